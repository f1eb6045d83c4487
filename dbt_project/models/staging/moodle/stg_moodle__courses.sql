with

source as (
    select * from {{ source('moodle', 'mdl_course') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as course_id,
        category as course_category_id,

        ----------  strings
        shortname as course_shortname,
        fullname as course_name,
        idnumber as course_idnumber,
        format as course_format,

        ----------  booleans
        visible = 1 as is_visible,
        enablecompletion = 1 as is_completion_enabled,

        ----------  timestamps
        {{ epoch_to_timestamptz('startdate') }} as starts_at,
        {{ epoch_to_timestamptz('enddate') }} as ends_at,
        {{ epoch_to_timestamptz('timecreated') }} as created_at,
        {{ epoch_to_timestamptz('timemodified') }} as modified_at

    from source
)

select * from renamed
