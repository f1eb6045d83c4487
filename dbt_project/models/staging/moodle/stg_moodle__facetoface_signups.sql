with

source as (
    select * from {{ source('moodle', 'mdl_facetoface_signups') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as signup_id,
        sessionid as session_id,
        userid as user_id,

        ----------  numerics
        notificationtype as notification_type

    from source
)

select * from renamed
