with

source as (
    select * from {{ source('moodle', 'mdl_facetoface_sessions') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as session_id,
        facetoface as facetoface_id,

        ----------  numerics
        capacity,

        ----------  booleans
        datetimeknown = 1 as is_datetime_known,
        allowoverbook = 1 as is_overbooking_allowed,

        ----------  timestamps
        {{ epoch_to_timestamptz('timecreated') }} as created_at,
        {{ epoch_to_timestamptz('timemodified') }} as modified_at

    from source
)

select * from renamed
