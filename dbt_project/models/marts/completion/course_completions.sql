{#
    Why append + a delete pre-hook, not delete+insert on unique_key='report_date': delete+insert
    only deletes the report dates that the new rows carry. Rebuilding a day whose completions
    have since gone from Moodle (a course reset deletes them) would bring no rows for that
    day, delete nothing, and leave the stale rows in the mart. The pre-hook empties every day of
    the window first, in the same transaction as the insert, so a rebuilt day that became empty
    is emptied too.

    The first build (no table yet) and --full-refresh build the window only: run a full refresh
    with the default, all-days window, not a one-day one.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_report_days_in_window() }}",
    )
}}

with

client_settings as (
    select * from {{ ref('stg_moodle__client_settings') }}
),

completions as (
    select * from {{ ref('stg_moodle__course_completions') }}
),

learners as (
    select * from {{ ref('int_learners_eligible') }}
),

courses as (
    select * from {{ ref('int_courses_eligible') }}
),

client_windows as (
    {# The window's local dates as epoch bounds in each client's own time zone. #}
    select
        client_id,
        timezone,
        {{ local_midnight_epoch("'" ~ var('min_date') ~ "'::date", 'timezone') }}
            as window_start_epoch,
        {{ local_midnight_epoch("'" ~ var('max_date') ~ "'::date", 'timezone') }}
            as window_end_epoch
    from client_settings
),

completions_in_window as (
    select
        completions.client_id,
        completions.user_id,
        completions.course_id,
        (completions.completed_at at time zone client_windows.timezone) as completed_at_local
    from completions
    inner join client_windows
        on completions.client_id = client_windows.client_id
    where
        {# In progress: timecompleted is null until Moodle marks the course complete. #}
        completions.completed_epoch is not null
        and completions.completed_epoch >= client_windows.window_start_epoch
        and completions.completed_epoch < client_windows.window_end_epoch
        {#
            The same window widened to every time zone (UTC-12 to UTC+14 lies within a day of
            UTC) as constants: PostgreSQL can push these into each client's branch of the union
            view and range-scan Moodle's index on timecompleted, which the per-client bounds
            above, coming from a join, cannot.
        #}
        and completions.completed_epoch
        >= {{ local_midnight_epoch("'" ~ var('min_date') ~ "'::date - 1", "'UTC'") }}
        and completions.completed_epoch
        < {{ local_midnight_epoch("'" ~ var('max_date') ~ "'::date + 1", "'UTC'") }}
),

final as (
    select
        ----------  partition
        completions_in_window.client_id,
        completions_in_window.completed_at_local::date as report_date,

        ----------  learner
        learners.user_id,
        learners.username,
        learners.idnumber,
        learners.email,
        learners.firstname,
        learners.lastname,

        ----------  course
        courses.course_id,
        courses.course_shortname,
        courses.course_name,

        ----------  completion
        completions_in_window.completed_at_local::date as completion_date,
        completions_in_window.completed_at_local as completed_at

    from completions_in_window
    inner join learners
        on
            completions_in_window.client_id = learners.client_id
            and completions_in_window.user_id = learners.user_id
    inner join courses
        on
            completions_in_window.client_id = courses.client_id
            and completions_in_window.course_id = courses.course_id
)

select * from final
