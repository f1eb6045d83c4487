{#
    When a face-to-face session starts: the earliest start of its dates. A session has one
    mdl_facetoface_sessions_dates row per day or slot, and the plugin itself takes MIN(timestart)
    as the session's start (moodle-schema.md §6). A session whose dates are not known
    (datetimeknown = 0: a wait-list-only session) has no start, even should stale date rows be
    left behind; so has a session without any date rows.
#}
with

sessions as (
    select
        client_id,
        session_id,
        facetoface_id,
        is_datetime_known
    from {{ ref('stg_moodle__facetoface_sessions') }}
),

session_dates as (
    select
        client_id,
        session_id,
        starts_at
    from {{ ref('stg_moodle__facetoface_session_dates') }}
),

earliest_dates as (
    select
        client_id,
        session_id,
        min(starts_at) as starts_at,
        count(*) as date_count
    from session_dates
    group by client_id, session_id
),

session_starts as (
    select
        sessions.client_id,
        sessions.session_id,
        sessions.facetoface_id,
        sessions.is_datetime_known,
        case when sessions.is_datetime_known then earliest_dates.starts_at end as starts_at,
        coalesce(earliest_dates.date_count, 0) as date_count
    from sessions
    left join earliest_dates
        on {{ same_client_key('sessions', 'earliest_dates', 'session_id') }}
)

select * from session_starts
