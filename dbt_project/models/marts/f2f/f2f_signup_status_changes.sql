{#
    Incremental by report day (macros/get_incremental_replace_window_sql.sql); which day each
    change goes into follows macros/report_day_assignments.sql. A change is a signup's last
    status of a local day (int_f2f_signup_days_last_status), keyed by that status row
    (change_key signup_id:status_id): it is sent on that day or, when it became visible after
    the day was built (a status row replicated late), on the next day built. Two rules of this
    feed on top of the shared ones, because a signup has one row per day with changes, not one
    row for ever:
    - a report day holds a signup once, with the latest status it is given (a late change and
      the signup's own change of the day meet there: the later status wins);
    - a late change is not sent once a later day's status of the same signup has been sent:
      it would set the signup back to an older status.
    A rebuilt day keeps the status row it sent, read again by its id, even when a row created
    later on that day has since become the day's last.
#}

with

statuses_in_window as (
    select * from {{ ref('int_f2f_signup_statuses_in_window') }}
),

status_rows as (
    {# Every status row of the window as the feed sends it, whether or not it is a change. #}
    select
        ----------  keys
        statuses_in_window.client_id,
        statuses_in_window.signup_id::text as entity_key,
        statuses_in_window.signup_id || ':' || statuses_in_window.status_id as change_key,
        statuses_in_window.status_date,
        statuses_in_window.created_epoch,
        statuses_in_window.status_id,
        statuses_in_window.is_last_of_day,

        ----------  learner and course
        statuses_in_window.user_id,
        statuses_in_window.course_id,

        ----------  face-to-face signup
        statuses_in_window.class_title,
        statuses_in_window.session_id,
        statuses_in_window.session_date,
        statuses_in_window.session_start,
        statuses_in_window.status,
        statuses_in_window.created_at_local as status_changed_at

    from statuses_in_window
),

{# The report days of this feed already built (macros/feed_days_built.sql). #}
f2f_days_built as (
    {{ days_built_of_feed() }}
),

{#
    The latest status day of each signup the mart has sent and keeps: on days outside the window,
    and on built days of the window, which are rebuilt as they were.
#}
latest_sent as (
    {% if is_incremental() %}
        select
            sent_rows.client_id,
            sent_rows.entity_key,
            max(sent_rows.status_changed_at)::date as status_date
        from {{ this }} as sent_rows
        left join f2f_days_built
            on {{ same_client_key('sent_rows', 'f2f_days_built', 'report_date') }}
        where
            {{ client_in_build('sent_rows.client_id') }}
            and (
                sent_rows.report_date < '{{ build_setting("min_date") }}'::date
                or sent_rows.report_date >= '{{ build_setting("max_date") }}'::date
                or f2f_days_built.report_date is not null
            )
        group by sent_rows.client_id, sent_rows.entity_key
    {% else %}
        select
            null::text as client_id,
            null::text as entity_key,
            null::date as status_date
        where false
    {% endif %}
),

overtaken as (
    {#
        Late changes (their day was built without them) of signups that have since been sent
        with the status of a later day: sending one now would set the signup back.
    #}
    select
        status_rows.client_id,
        status_rows.change_key
    from status_rows
    inner join latest_sent
        on {{ same_client_key('status_rows', 'latest_sent', 'entity_key') }}
    where
        status_rows.status_date < latest_sent.status_date
        and (status_rows.client_id, status_rows.status_date) in (
            select
                f2f_days_built.client_id,
                f2f_days_built.report_date
            from f2f_days_built
        )
),

changes as (
    select
        status_rows.client_id,
        status_rows.change_key,
        status_rows.entity_key,
        status_rows.status_date as first_event_date,
        status_rows.status_date as change_event_date
    from status_rows
    where
        status_rows.is_last_of_day
        and not exists (
            select 1
            from overtaken
            where {{ same_client_key('overtaken', 'status_rows', 'change_key') }}
        )
),

{{ report_day_assignments('changes', rows='status_rows') }},

{# A report day holds a signup once: its latest status of those assigned to the day. #}
ranked as (
    select
        assigned.*,
        row_number() over (
            partition by assigned.client_id, assigned.report_date, assigned.entity_key
            order by
                assigned.status_date desc,
                assigned.created_epoch desc,
                assigned.status_id desc
        ) as latest_in_day
    from assigned
),

once_per_day as (
    select ranked.* from ranked
    where ranked.latest_in_day = 1
),

{{ feed_mart_final('once_per_day', [
    'class_title', 'session_id', 'session_date', 'session_start', 'status', 'status_changed_at',
]) }}

select * from final
