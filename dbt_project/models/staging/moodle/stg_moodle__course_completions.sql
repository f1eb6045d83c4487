with

source as (
    select * from {{ source('moodle', 'mdl_course_completions') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as course_completion_id,
        userid as user_id,
        course as course_id,

        ----------  timestamps
        {{ epoch_to_timestamptz('timeenrolled') }} as enrolled_at,
        {{ epoch_to_timestamptz('timestarted') }} as started_at,
        {{ epoch_to_timestamptz('timecompleted') }} as completed_at,
        {{ epoch_to_timestamptz('reaggregate') }} as reaggregate_requested_at,

        ----------  raw epochs, for filters that must use the Moodle index
        timecompleted as completed_epoch

    from source
)

select * from renamed
