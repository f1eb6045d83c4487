{#
    SCORM tracking of Moodle 4.2 and older: one row per user × SCORM × SCO × attempt × CMI
    element. Moodle 4.3 replaced the table (stg_moodle__scorm_attempts,
    stg_moodle__scorm_scoes_values, stg_moodle__scorm_elements); the union view is empty for
    clients on 4.3 and newer.
#}
with

source as (
    select * from {{ source('moodle', 'mdl_scorm_scoes_track') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as track_id,
        userid as user_id,
        scormid as scorm_id,
        scoid as sco_id,

        ----------  numerics
        attempt,

        ----------  strings
        element,
        {# Always text, possibly ''; SCORM scores are text too ('85', '40.5'). #}
        value,

        ----------  timestamps
        {{ epoch_to_timestamptz('timemodified') }} as modified_at,

        ----------  raw epochs, for filters that must use an index on the Moodle column
        timemodified as modified_epoch

    from source
)

select * from renamed
