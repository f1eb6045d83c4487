with

source as (
    select * from {{ source('moodle', 'mdl_facetoface_sessions_dates') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as session_date_id,
        sessionid as session_id,

        ----------  timestamps
        {{ epoch_to_timestamptz('timestart') }} as starts_at,
        {{ epoch_to_timestamptz('timefinish') }} as finishes_at,

        ----------  raw epochs
        timestart as starts_epoch,
        timefinish as finishes_epoch

    from source
)

select * from renamed
