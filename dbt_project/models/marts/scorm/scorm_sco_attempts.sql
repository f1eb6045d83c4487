{#
    Incremental by report day (macros/get_incremental_replace_window_sql.sql); which day each
    SCO-attempt goes into follows macros/report_day_assignments.sql: on the local day of its
    latest tracking change, or, when that change became visible after its day was built, into
    the next day built. A learner who goes back to an attempt on a later day changes its
    last_modified, which is a new change: the attempt is sent again on that day.

    Planner settings: macros/mart_planner_settings.sql.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_window',
        on_schema_change='fail',
        pre_hook=[
            "{{ forget_days_built('scorm') }}",
            "{{ mart_planner_settings() }}",
        ],
        post_hook="{{ record_days_built('scorm') }}",
    )
}}

with

client_settings as (
    select * from {{ ref('stg_moodle__client_settings') }}
),

sco_attempts as (
    select * from {{ ref('int_scorm_sco_attempts_pivoted') }}
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

sco_attempts_in_window as (
    {#
        int_scorm_sco_attempts_pivoted holds the SCO-attempts with a tracking row changed in the
        look-back window widened by a day either side; the exact bounds, local midnights of the
        client's own time zone, apply here to each one's last change.
    #}
    select
        sco_attempts.*,
        (sco_attempts.last_modified_at at time zone client_windows.timezone)
            as last_modified_at_local
    from sco_attempts
    inner join client_windows
        on sco_attempts.client_id = client_windows.client_id
    where
        {{ in_client_window('sco_attempts.last_modified_epoch') }}
),

changes as (
    select
        ----------  keys
        sco_attempts_in_window.client_id,
        sco_attempts_in_window.user_id
        || ':' || sco_attempts_in_window.sco_id
        || ':' || sco_attempts_in_window.attempt as entity_key,
        sco_attempts_in_window.user_id
        || ':' || sco_attempts_in_window.sco_id
        || ':' || sco_attempts_in_window.attempt
        || ':' || sco_attempts_in_window.last_modified_epoch as change_key,
        sco_attempts_in_window.last_modified_at_local::date as first_event_date,
        sco_attempts_in_window.last_modified_at_local::date as change_event_date,

        ----------  learner
        {{ learner_columns('learners') }},

        ----------  course
        {{ course_columns('courses') }},

        ----------  SCO-attempt
        sco_attempts_in_window.scorm_id,
        sco_attempts_in_window.scorm_name,
        sco_attempts_in_window.sco_id,
        sco_attempts_in_window.sco_name,
        sco_attempts_in_window.status,
        sco_attempts_in_window.attempt,
        sco_attempts_in_window.score,
        sco_attempts_in_window.last_modified_at_local as modified_at

    from sco_attempts_in_window
    inner join learners
        on
            sco_attempts_in_window.client_id = learners.client_id
            and sco_attempts_in_window.user_id = learners.user_id
    inner join courses
        on
            sco_attempts_in_window.client_id = courses.client_id
            and sco_attempts_in_window.course_id = courses.course_id
),

{{ report_day_assignments('changes', 'scorm') }},

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
        changes.scorm_id,
        changes.scorm_name,
        changes.sco_id,
        changes.sco_name,
        changes.status,
        changes.attempt,
        changes.score,
        changes.modified_at
    from assignments
    inner join changes
        on
            assignments.client_id = changes.client_id
            and assignments.change_key = changes.change_key
)

select * from final
