with

source as (
    select * from {{ source('moodle', 'mdl_facetoface') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as facetoface_id,
        course as course_id,

        ----------  strings
        name as class_title,
        shortname as facetoface_shortname,

        ----------  booleans
        approvalreqd = 1 as is_approval_required,

        ----------  timestamps
        {{ epoch_to_timestamptz('timecreated') }} as created_at,
        {{ epoch_to_timestamptz('timemodified') }} as modified_at

    from source
)

select * from renamed
