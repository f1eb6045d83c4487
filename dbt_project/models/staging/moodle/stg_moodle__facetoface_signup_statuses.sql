with

source as (
    select * from {{ source('moodle', 'mdl_facetoface_signups_status') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as status_id,
        signupid as signup_id,
        createdby as created_by_user_id,

        ----------  numerics
        statuscode as status_code,
        grade,

        ----------  booleans
        superceded = 1 as is_superceded,

        ----------  timestamps
        {{ epoch_to_timestamptz('timecreated') }} as created_at,

        ----------  raw epochs, for filters that can use an index on timecreated
        timecreated as created_epoch

    from source
)

select * from renamed
