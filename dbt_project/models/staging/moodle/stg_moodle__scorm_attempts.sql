{# SCORM attempts from Moodle 4.3: one row per user × SCORM × attempt number, without times. #}
with

source as (
    select * from {{ source('moodle', 'mdl_scorm_attempt') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as attempt_id,
        userid as user_id,
        scormid as scorm_id,

        ----------  numerics
        attempt

    from source
)

select * from renamed
