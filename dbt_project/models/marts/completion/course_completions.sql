{#
    Incremental by report day (macros/get_incremental_replace_window_sql.sql); which day each
    completion goes into follows macros/report_day_assignments.sql: on the local day of
    timecompleted, or, when Moodle's cron back-dates it into a day already built, into the next
    day built after it became visible.
#}

with

completions as (
    select * from {{ ref('stg_moodle__course_completions') }}
),

completions_in_window as (
    select
        completions.client_id,
        completions.user_id,
        completions.course_id,
        completions.completed_epoch,
        (completions.completed_at at time zone client_windows.timezone) as completed_at_local
    from completions
    {{ join_client_window('completions') }}
    where
        {# In progress: timecompleted is null until Moodle marks the course complete. #}
        completions.completed_epoch is not null
        {# Moodle's index on timecompleted serves the read (macros/day_window.sql). #}
        and {{ in_build_window('completions.completed_epoch', 'completions.client_id') }}
),

changes as (
    select
        ----------  keys
        completions_in_window.client_id,
        completions_in_window.user_id || ':' || completions_in_window.course_id as entity_key,
        completions_in_window.user_id || ':' || completions_in_window.course_id
        || ':' || completions_in_window.completed_epoch as change_key,
        completions_in_window.completed_at_local::date as first_event_date,
        completions_in_window.completed_at_local::date as change_event_date,

        ----------  learner and course
        {{ identity_columns() }},

        ----------  completion
        completions_in_window.completed_at_local::date as completion_date,
        completions_in_window.completed_at_local as completed_at

    from completions_in_window
    {{ join_learner_and_course('completions_in_window') }}
),

{# The feed's own columns, in the mart's order (orchestration/feeds.py). #}
{{ feed_mart_rows('changes', [
    'completion_date', 'completed_at',
]) }}

select * from final
