{#
    The face-to-face status rows of the build's window (each client's look-back window, local
    midnights of its own time zone: macros/day_window.sql), each with what the feed sends of its
    signup: the learner, the session and its start in the client's time zone, the activity's
    course and class title, and whether the row is its signup's last status of the day
    (int_f2f_signup_days_last_status). A status row of a signup, session or activity that is
    gone (Moodle has no foreign keys), or of an activity being deleted
    (int_f2f_activities_eligible), is left out by the inner joins: there is no class to report
    it with.

    Ephemeral, like int_scorm_tracks_unioned: it reads the build's window only (vars min_date,
    max_date, lookback_days, client_ids), so it is inlined into the mart's statement, whose
    planner settings (macros/mart_planner_settings.sql) join in the order written: the window's
    status rows first, then each lookup by its key.
#}
{{ config(materialized='ephemeral') }}

with

statuses as (
    select * from {{ ref('int_f2f_signup_statuses_dated') }}
),

last_statuses as (
    select * from {{ ref('int_f2f_signup_days_last_status') }}
),

signups as (
    select
        client_id,
        signup_id,
        session_id,
        user_id
    from {{ ref('stg_moodle__facetoface_signups') }}
),

session_starts as (
    select
        client_id,
        session_id,
        facetoface_id,
        starts_at
    from {{ ref('int_f2f_session_starts') }}
),

facetofaces as (
    select * from {{ ref('int_f2f_activities_eligible') }}
),

statuses_in_window as (
    select
        statuses.client_id,
        statuses.status_id,
        statuses.signup_id,
        statuses.status,
        statuses.status_date,
        statuses.created_epoch,
        statuses.created_at_local,
        client_windows.timezone
    from statuses
    {{ join_client_window('statuses') }}
    {#
        An index on timecreated serves the read (macros/day_window.sql). The plugin has no such
        index (moodle-schema.md §6); the warehouse adds it.
    #}
    where {{ in_build_window('statuses.created_epoch', 'statuses.client_id') }}
),

last_statuses_in_window as (
    select
        last_statuses.client_id,
        last_statuses.status_id
    from last_statuses
    {{ join_client_window('last_statuses') }}
    where {{ in_build_window('last_statuses.created_epoch', 'last_statuses.client_id') }}
),

described as (
    select
        statuses_in_window.client_id,
        statuses_in_window.status_id,
        statuses_in_window.signup_id,
        statuses_in_window.status,
        statuses_in_window.status_date,
        statuses_in_window.created_epoch,
        statuses_in_window.created_at_local,
        last_statuses_in_window.status_id is not null as is_last_of_day,
        signups.user_id,
        facetofaces.course_id,
        facetofaces.class_title,
        session_starts.session_id,
        (session_starts.starts_at at time zone statuses_in_window.timezone)::date as session_date,
        (session_starts.starts_at at time zone statuses_in_window.timezone) as session_start
    from statuses_in_window
    left join last_statuses_in_window
        on {{ same_client_key('statuses_in_window', 'last_statuses_in_window', 'status_id') }}
    inner join signups
        on {{ same_client_key('statuses_in_window', 'signups', 'signup_id') }}
    inner join session_starts
        on {{ same_client_key('signups', 'session_starts', 'session_id') }}
    inner join facetofaces
        on {{ same_client_key('session_starts', 'facetofaces', 'facetoface_id') }}
)

select * from described
