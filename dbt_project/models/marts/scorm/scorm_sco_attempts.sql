{#
    Incremental by report day (macros/get_incremental_replace_window_sql.sql); which day each
    SCO-attempt goes into follows macros/report_day_assignments.sql: on the local day of its
    latest tracking change, or, when that change became visible after its day was built, into
    the next day built. A learner who goes back to an attempt on a later day changes its
    last_modified, which is a new change: the attempt is sent again on that day.
#}

with

sco_attempts as (
    select * from {{ ref('int_scorm_sco_attempts_pivoted') }}
),

sco_attempts_in_window as (
    {#
        int_scorm_sco_attempts_pivoted holds the SCO-attempts with a tracking row changed in the
        look-back window widened by a day either side; the exact bounds, local midnights of the
        client's own time zone, apply here to each one's last change.
    #}
    select
        sco_attempts.*,
        (sco_attempts.last_modified_at at time zone client_windows.timezone) as modified_at
    from sco_attempts
    {{ join_client_window('sco_attempts') }}
    where
        {{ in_client_window('sco_attempts.last_modified_epoch') }}
),

changes as (
    {# A SCO-attempt is one change per last_modified: sent again when the learner goes back. #}
    select
        sco_attempts_in_window.*,
        sco_attempts_in_window.user_id
        || ':' || sco_attempts_in_window.sco_id
        || ':' || sco_attempts_in_window.attempt as entity_key,
        sco_attempts_in_window.user_id
        || ':' || sco_attempts_in_window.sco_id
        || ':' || sco_attempts_in_window.attempt
        || ':' || sco_attempts_in_window.last_modified_epoch as change_key,
        sco_attempts_in_window.modified_at::date as first_event_date,
        sco_attempts_in_window.modified_at::date as change_event_date
    from sco_attempts_in_window
),

{{ feed_mart_rows('changes', [
    'scorm_id', 'scorm_name', 'sco_id', 'sco_name', 'status', 'attempt', 'score', 'modified_at',
]) }}
