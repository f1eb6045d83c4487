{#
    Which report day each change goes into: the rule that no row is lost or sent twice.

    `changes` names a CTE with one row per change: client_id, change_key (unique per change
    within a client; a new value means a new change to send), entity_key (the thing that
    changes: an attempt, a signup, a completion), first_event_date (local date the entity is
    first reported on, e.g. the day a quiz attempt was finished) and change_event_date (local date
    of this change, e.g. the day a regrade was seen). It must already be limited to events from
    min_date - lookback_days onwards.

    The rules, per client of the build (var client_ids, macros/clients_in_build.sql: the other
    clients' days, changes and sent rows are left alone), for the days of the window (vars
    min_date <= day < max_date):
    1. A day already built before (in marts.feed_days_built) is rebuilt with the changes it was
       given then, read again from current data. It takes in nothing new, so a re-run of a
       delivered day reproduces it while the data is unchanged.
    2. A day built for the first time takes every change not yet sent whose event date is that
       day (the first_event_date for an entity never sent, else the change_event_date).
    3. A change not yet sent whose event date is a day that was already built (it became visible
       after that day's file: back-dated, replicated late, revisited, regraded) goes into the
       earliest day of the window built for the first time after its event date, within
       lookback_days. Changes of days never built wait for those days, so a backfill of a day
       that was never delivered contains that day's rows.
    The result is two CTEs: `assignments` (client_id, change_key, report_date), and `assigned`,
    every column of `rows` (a CTE with client_id and change_key: `changes` unless given, the
    face-to-face mart's status rows) with the report_date it is assigned to, one row per
    assignment. The feed is the mart's (macros/mart_feed.sql).
#}
{% macro report_day_assignments(changes, rows=none) -%}
{%- set rows = rows or changes -%}
days_built as (
    {{ days_built_of_feed() }}
),

window_days as (
    select
        window_report_days.client_id,
        window_report_days.report_date,
        days_built.report_date is not null as was_built
    from ({{ window_report_days() }}) as window_report_days
    left join days_built
        on {{ same_client_key('window_report_days', 'days_built', 'report_date') }}
),

sent as (
    {% if is_incremental() -%}
    select client_id, change_key, entity_key, report_date from {{ this }}
    where {{ client_in_build('client_id') }}
    {%- else -%}
    select
        null::text as client_id,
        null::text as change_key,
        null::text as entity_key,
        null::date as report_date
    where false
    {%- endif %}
),

kept as (
    select sent.client_id, sent.change_key, sent.entity_key, sent.report_date
    from sent
    inner join window_days
        on {{ same_client_key('sent', 'window_days', 'report_date') }}
    where window_days.was_built
),

{# Sent and staying sent: rows of days outside the window, and of the days rebuilt as they were. #}
still_sent as (
    select client_id, change_key, entity_key
    from sent
    where
        report_date < '{{ build_setting("min_date") }}'::date
        or report_date >= '{{ build_setting("max_date") }}'::date
    union all
    select client_id, change_key, entity_key from kept
),

{# A distinct set, hash-joined: a per-row EXISTS over a large mart would be quadratic. #}
sent_entities as (
    select distinct client_id, entity_key from still_sent
),

unsent as (
    select
        {{ changes }}.client_id,
        {{ changes }}.change_key,
        case
            when sent_entities.entity_key is not null then {{ changes }}.change_event_date
            else {{ changes }}.first_event_date
        end as event_date
    from {{ changes }}
    left join sent_entities
        on {{ same_client_key(changes, 'sent_entities', 'entity_key') }}
    where not exists (
        select 1 from still_sent
        where {{ same_client_key('still_sent', changes, 'change_key') }}
    )
),

on_their_day as (
    select unsent.client_id, unsent.change_key, unsent.event_date as report_date
    from unsent
    inner join window_days
        on {{ same_client_key('unsent', 'window_days', 'event_date', 'report_date') }}
    where not window_days.was_built
),

late as (
    select unsent.client_id, unsent.change_key, min(window_days.report_date) as report_date
    from unsent
    inner join days_built
        on {{ same_client_key('unsent', 'days_built', 'event_date', 'report_date') }}
    inner join window_days
        on
            unsent.client_id = window_days.client_id
            and window_days.report_date > unsent.event_date
            and window_days.report_date <= unsent.event_date + {{ build_setting("lookback_days") }}
    where not window_days.was_built
    group by unsent.client_id, unsent.change_key
),

assignments as (
    select client_id, change_key, report_date from kept
    union all
    select * from on_their_day
    union all
    select * from late
),

assigned as (
    select
        assignments.report_date,
        {{ rows }}.*
    from assignments
    inner join {{ rows }}
        on {{ same_client_key('assignments', rows, 'change_key') }}
)
{%- endmacro %}
