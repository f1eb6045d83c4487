with

source as (
    select * from {{ source('moodle', 'mdl_modules') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as module_id,

        ----------  strings
        {# The activity type: 'scorm', 'quiz', 'facetoface' (ids differ per site: join by name). #}
        name as module_name,

        ----------  booleans
        visible = 1 as is_enabled

    from source
)

select * from renamed
