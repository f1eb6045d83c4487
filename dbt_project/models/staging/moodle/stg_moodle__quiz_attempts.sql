with

source as (
    select * from {{ source('moodle', 'mdl_quiz_attempts') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as attempt_id,
        quiz as quiz_id,
        userid as user_id,
        uniqueid as question_usage_id,

        ----------  attempt
        attempt,
        state,

        ----------  booleans
        preview = 1 as is_preview,

        ----------  numerics
        {# Raw marks; null while the attempt needs grading (or is not graded yet). #}
        sumgrades as sum_marks,

        ----------  timestamps
        {{ epoch_to_timestamptz('timestart') }} as started_at,
        {{ epoch_to_timestamptz('timefinish') }} as finished_at,
        {{ epoch_to_timestamptz('timemodified') }} as modified_at,

        ----------  raw epochs, for filters that must use an index on the Moodle column
        timestart as started_epoch,
        timefinish as finished_epoch,
        timemodified as modified_epoch

    from source
)

select * from renamed
