{#
    SCORM tracking values of Moodle 4.3 and newer: one row per attempt × SCO × element. Nothing
    enforces uniqueness of (attempt, SCO, element), so a pair can repeat.
#}
with

source as (
    select * from {{ source('moodle', 'mdl_scorm_scoes_value') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as value_id,
        attemptid as attempt_id,
        scoid as sco_id,
        elementid as element_id,

        ----------  strings
        value,

        ----------  timestamps
        {{ epoch_to_timestamptz('timemodified') }} as modified_at,

        ----------  raw epochs, for filters that must use an index on the Moodle column
        timemodified as modified_epoch

    from source
)

select * from renamed
