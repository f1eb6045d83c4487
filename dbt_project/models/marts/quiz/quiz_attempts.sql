{#
    Incremental by report day (macros/get_incremental_replace_window_sql.sql); which day each
    attempt goes into follows macros/report_day_assignments.sql. An attempt is first sent on the
    local day it was finished (timefinish). Each grade it gets is a change of its own (change_key
    attempt_id:sum_marks): a regrade or a manual grading changes sumgrades and bumps
    timemodified, never timefinish (moodle-schema.md §5), so the attempt is sent again, with the
    new score, on the local day of timemodified, or on the next day built after it became visible.
#}
{# Planner settings: macros/mart_planner_settings.sql. #}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        on_schema_change='fail',
        pre_hook=[
            "{{ forget_days_built('quiz') }}",
            "{{ mart_planner_settings() }}",
        ],
        post_hook="{{ record_days_built('quiz') }}",
    )
}}

with

client_settings as (
    select * from {{ ref('stg_moodle__client_settings') }}
),

attempts as (
    select * from {{ ref('int_quiz_attempts_graded') }}
),

learners as (
    select * from {{ ref('int_learners_eligible') }}
),

courses as (
    select * from {{ ref('int_courses_eligible') }}
),

client_windows as (
    {# The look-back window's local dates as epoch bounds in each client's own time zone. #}
    {{ client_window_bounds('client_settings') }}
),

attempts_in_window as (
    {# Finished in the window, or graded again (timemodified) in it. #}
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
        (attempts.started_at at time zone client_windows.timezone) as started_at_local,
        (attempts.finished_at at time zone client_windows.timezone) as finished_at_local,
        (attempts.modified_at at time zone client_windows.timezone) as modified_at_local
    from attempts
    inner join client_windows
        on attempts.client_id = client_windows.client_id
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
        {# The build's clients as constants: other clients' union branches are skipped (macros/clients_in_build.sql). #}
        and {{ client_in_build('attempts.client_id') }}
),

changes as (
    select
        ----------  keys
        attempts_in_window.client_id,
        attempts_in_window.attempt_id::text as entity_key,
        attempts_in_window.attempt_id
        || ':' || coalesce(attempts_in_window.sum_marks::text, 'ungraded') as change_key,
        {#
            A finished attempt always has timefinish; should one lack it, its last save stands in,
            so that it is still sent.
        #}
        coalesce(
            attempts_in_window.finished_at_local, attempts_in_window.modified_at_local
        )::date as first_event_date,
        coalesce(
            attempts_in_window.modified_at_local, attempts_in_window.finished_at_local
        )::date as change_event_date,

        ----------  learner
        {{ learner_columns('learners') }},

        ----------  course
        {{ course_columns('courses') }},

        ----------  quiz attempt
        attempts_in_window.quiz_id,
        attempts_in_window.quiz_name,
        attempts_in_window.attempt,
        attempts_in_window.score,
        attempts_in_window.max_score,
        attempts_in_window.status,
        attempts_in_window.started_at_local as started_at,
        attempts_in_window.finished_at_local as finished_at

    from attempts_in_window
    inner join learners
        on
            attempts_in_window.client_id = learners.client_id
            and attempts_in_window.user_id = learners.user_id
    inner join courses
        on
            attempts_in_window.client_id = courses.client_id
            and attempts_in_window.course_id = courses.course_id
),

{{ report_day_assignments('changes', 'quiz') }},

final as (
    select
        changes.client_id,
        assignments.report_date,
        changes.change_key,
        changes.entity_key,
        changes.user_id,
        changes.username,
        changes.idnumber,
        changes.email,
        changes.firstname,
        changes.lastname,
        changes.course_id,
        changes.course_shortname,
        changes.course_name,
        changes.quiz_id,
        changes.quiz_name,
        changes.attempt,
        changes.score,
        changes.max_score,
        changes.status,
        changes.started_at,
        changes.finished_at
    from assignments
    inner join changes
        on
            assignments.client_id = changes.client_id
            and assignments.change_key = changes.change_key
)

select * from final
