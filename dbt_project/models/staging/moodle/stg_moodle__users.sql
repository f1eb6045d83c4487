with

source as (
    select * from {{ source('moodle', 'mdl_user') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as user_id,
        mnethostid as mnet_host_id,

        ----------  strings
        username,
        idnumber,
        email,
        firstname,
        lastname,
        auth as auth_method,

        ----------  booleans
        deleted = 1 as is_deleted,
        suspended = 1 as is_suspended,
        confirmed = 1 as is_confirmed,

        ----------  timestamps
        {{ epoch_to_timestamptz('timecreated') }} as created_at,
        {{ epoch_to_timestamptz('timemodified') }} as modified_at,
        {{ epoch_to_timestamptz('firstaccess') }} as first_accessed_at,
        {{ epoch_to_timestamptz('lastaccess') }} as last_accessed_at

    from source
)

select * from renamed
