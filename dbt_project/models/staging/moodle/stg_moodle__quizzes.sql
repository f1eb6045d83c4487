with

source as (
    select * from {{ source('moodle', 'mdl_quiz') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as quiz_id,
        course as course_id,

        ----------  strings
        name as quiz_name,

        ----------  numerics
        {# The maximum grade the raw marks are scaled to ("Maximum grade"). #}
        grade as quiz_max_grade,
        {# The total of the slots' maximum marks: the raw maximum of an attempt. #}
        sumgrades as quiz_sum_marks,
        decimalpoints as decimal_points,
        grademethod as grade_method,

        ----------  timestamps
        {{ epoch_to_timestamptz('timeopen') }} as opens_at,
        {{ epoch_to_timestamptz('timeclose') }} as closes_at,
        {{ epoch_to_timestamptz('timecreated') }} as created_at,
        {{ epoch_to_timestamptz('timemodified') }} as modified_at

    from source
)

select * from renamed
