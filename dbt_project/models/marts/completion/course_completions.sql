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
        (completions.completed_at at time zone client_windows.timezone) as completed_at
    from completions
    {{ join_client_window('completions') }}
    where
        {# In progress: timecompleted is null until Moodle marks the course complete. #}
        completions.completed_epoch is not null
        {# Moodle's index on timecompleted serves the read (macros/day_window.sql). #}
        and {{ in_build_window('completions.completed_epoch', 'completions.client_id') }}
),

changes as (
    {# A completion with a new timecompleted (a course completed again) is a new change. #}
    select
        completions_in_window.*,
        completions_in_window.user_id || ':' || completions_in_window.course_id as entity_key,
        completions_in_window.user_id || ':' || completions_in_window.course_id
        || ':' || completions_in_window.completed_epoch as change_key,
        completions_in_window.completed_at::date as completion_date,
        completions_in_window.completed_at::date as first_event_date,
        completions_in_window.completed_at::date as change_event_date
    from completions_in_window
),

{{ feed_mart_rows('changes', ['completion_date', 'completed_at']) }}
