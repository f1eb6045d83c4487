{#
    Incremental by report day (macros/get_incremental_replace_window_sql.sql); which day each
    attempt goes into follows macros/report_day_assignments.sql. An attempt is first sent on the
    local day it was finished (timefinish). Each grade it gets is a change of its own (change_key
    attempt_id:sum_marks): a regrade or a manual grading changes sumgrades and bumps
    timemodified, never timefinish (moodle-schema.md §5), so the attempt is sent again, with the
    new score, on the local day of timemodified, or on the next day built after it became visible.
#}

with

attempts as (
    select * from {{ ref('int_quiz_attempts_graded') }}
),

attempts_in_window as (
    {# Finished in the window, or graded again (timemodified) in it; times in the client's zone. #}
    select
        attempts.client_id,
        attempts.attempt_id,
        attempts.user_id,
        attempts.course_id,
        attempts.quiz_id,
        attempts.quiz_name,
        attempts.attempt,
        attempts.sum_marks,
        attempts.score,
        attempts.max_score,
        attempts.status,
        (attempts.started_at at time zone client_windows.timezone) as started_at,
        (attempts.finished_at at time zone client_windows.timezone) as finished_at,
        (attempts.modified_at at time zone client_windows.timezone) as modified_at
    from attempts
    {{ join_client_window('attempts') }}
    where
        (
            ({{ in_client_window('attempts.finished_epoch') }})
            or ({{ in_client_window('attempts.modified_epoch') }})
        )
        {#
            Lets range scans of indexes on timefinish and timemodified serve the read, combined
            (a BitmapOr; macros/day_window.sql). Moodle has no index on either column
            (moodle-schema.md §5); the warehouse adds them.
        #}
        and (
            ({{ in_widened_window('attempts.finished_epoch') }})
            or ({{ in_widened_window('attempts.modified_epoch') }})
        )
        {#
            The build's clients as constants: other clients' union branches are skipped
            (macros/clients_in_build.sql).
        #}
        and {{ client_in_build('attempts.client_id') }}
),

changes as (
    select
        attempts_in_window.*,
        attempts_in_window.attempt_id::text as entity_key,
        attempts_in_window.attempt_id
        || ':' || coalesce(attempts_in_window.sum_marks::text, 'ungraded') as change_key,
        {#
            A finished attempt always has timefinish; should one lack it, its last save stands in,
            so that it is still sent.
        #}
        coalesce(attempts_in_window.finished_at, attempts_in_window.modified_at)::date
            as first_event_date,
        coalesce(attempts_in_window.modified_at, attempts_in_window.finished_at)::date
            as change_event_date
    from attempts_in_window
),

{{ feed_mart_rows('changes', [
    'quiz_id', 'quiz_name', 'attempt', 'score', 'max_score', 'status', 'started_at', 'finished_at',
]) }}
