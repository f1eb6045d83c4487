with

source as (
    select * from {{ source('moodle', 'mdl_course_modules') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as course_module_id,
        course as course_id,
        module as module_id,
        {# The activity's own id in its module's table (mdl_scorm.id, mdl_quiz.id, …). #}
        instance as instance_id,
        section as course_section_id,

        ----------  strings
        idnumber as course_module_idnumber,

        ----------  booleans
        visible = 1 as is_visible,
        {# 1 while the activity is in the recycle bin or being deleted by an ad-hoc task. #}
        deletioninprogress = 1 as is_deletion_in_progress,

        ----------  timestamps
        {{ epoch_to_timestamptz('added') }} as added_at

    from source
)

select * from renamed
