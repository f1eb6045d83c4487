with

source as (
    select * from {{ source('moodle', 'client_settings') }}
),

renamed as (
    select
        ----------  ids
        client_id,

        ----------  strings
        timezone,
        moodle_schema,
        table_prefix,
        scorm_tracking

    from source
)

select * from renamed
