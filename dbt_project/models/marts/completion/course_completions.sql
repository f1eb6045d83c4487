{#
    Incremental by report day (macros/get_incremental_replace_window_sql.sql); which day each
    completion goes into follows macros/report_day_assignments.sql: on the local day of
    timecompleted, or, when Moodle's cron back-dates it into a day already built, into the next
    day built after it became visible.
#}
{# Planner settings: macros/mart_planner_settings.sql. #}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        on_schema_change='fail',
        pre_hook=[
            "{{ forget_days_built('completion') }}",
            "{{ mart_planner_settings() }}",
        ],
        post_hook="{{ record_days_built('completion') }}",
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
    {# The look-back window's local dates as epoch bounds in each client's own time zone. #}
    {{ client_window_bounds('client_settings') }}
),

completions_in_window as (
    select
        completions.client_id,
        completions.user_id,
        completions.course_id,
        completions.completed_epoch,
        (completions.completed_at at time zone client_windows.timezone) as completed_at_local
    from completions
    inner join client_windows
        on completions.client_id = client_windows.client_id
    where
        {# In progress: timecompleted is null until Moodle marks the course complete. #}
        completions.completed_epoch is not null
        and {{ in_client_window('completions.completed_epoch') }}
        {# Lets Moodle's index on timecompleted serve the read (macros/day_window.sql). #}
        and {{ in_widened_window('completions.completed_epoch') }}
        {# The build's clients as constants: other clients' union branches are skipped (macros/clients_in_build.sql). #}
        and {{ client_in_build('completions.client_id') }}
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

        ----------  learner
        {{ learner_columns('learners') }},

        ----------  course
        {{ course_columns('courses') }},

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
),

{{ report_day_assignments('changes', 'completion') }},

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
        changes.completion_date,
        changes.completed_at
    from assignments
    inner join changes
        on
            assignments.client_id = changes.client_id
            and assignments.change_key = changes.change_key
)

select * from final
