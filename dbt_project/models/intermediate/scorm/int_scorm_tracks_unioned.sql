{#
    The SCORM tracking a build needs, in one shape whatever the client's Moodle release: every
    row (all CMI elements) of each SCO-attempt that has a row changed in the build's look-back
    window, one row per user × SCORM × SCO × attempt × element as Moodle 4.2's table had it
    (moodle-schema.md §4.2).
    - Moodle 4.2 and older: mdl_scorm_scoes_track as it is.
    - Moodle 4.3 and newer: mdl_scorm_scoes_value, with its attempt (user, SCORM, attempt
      number) from mdl_scorm_attempt and its element name from mdl_scorm_element. Element ids
      are made per site on first use: the join is by id within the client, and callers pick
      elements by name.
    Each client is read from the design moodle.client_settings names for it (a replica that
    kept the 4.2 table after an upgrade holds a stale copy of the migrated rows), so the two
    halves never overlap (macros/scorm_tracking_changed_in_build.sql, the one rule for both).

    Ephemeral, because it depends on the build's window (vars min_date, max_date,
    lookback_days) and clients (var client_ids, macros/clients_in_build.sql: the other clients'
    tables are not read): a view would keep the window of the build that made it.

    How it reads, so that a one-day build of a big site reads only that day's SCO-attempts:
    1. The keys (SCO-attempts) with a row changed in the window widened to every time zone
       (UTC-12 to UTC+14 lies within a day of UTC). The bounds are constants, so PostgreSQL
       pushes them into each client's table and can range-scan an index on timemodified (Moodle
       has none; the warehouse adds it). The exact per-client day bounds apply downstream to
       each attempt's latest change, which is in this window whenever they hold.
    2. All rows of just those keys, one key at a time through a lateral subquery: its key is a
       parameter that PostgreSQL pushes into the staging view and onto Moodle's
       (user, SCORM, SCO, attempt) index, mdl_scorm_attempt's primary key and
       mdl_scorm_scoes_value's attemptid index. A plain join could not: views with a WITH
       clause (every staging view) are planned on their own, so it would hash whole tables.
       `offset 0` stops PostgreSQL from turning the lateral subquery into that plain join.
    The imports are `not materialized` because each is read twice: a CTE read twice is
    otherwise computed once in full.
#}
{{ config(materialized='ephemeral') }}

with

legacy_tracks as not materialized (
    select * from {{ ref('stg_moodle__scorm_scoes_tracks') }}
),

attempts as not materialized (
    select * from {{ ref('stg_moodle__scorm_attempts') }}
),

scoes_values as not materialized (
    select * from {{ ref('stg_moodle__scorm_scoes_values') }}
),

elements as (
    select * from {{ ref('stg_moodle__scorm_elements') }}
),

legacy_touched as (
    select distinct
        legacy_tracks.client_id,
        legacy_tracks.user_id,
        legacy_tracks.scorm_id,
        legacy_tracks.sco_id,
        legacy_tracks.attempt
    from legacy_tracks
    {{ scorm_tracking_changed_in_build('legacy_tracks', 'legacy') }}
),

normalised_touched as (
    select distinct
        scoes_values.client_id,
        scoes_values.attempt_id,
        scoes_values.sco_id
    from scoes_values
    {{ scorm_tracking_changed_in_build('scoes_values', 'normalised') }}
),

{#
    sqlfluff, for the two lateral reads below: `offset 0` without `order by` is meant (a fence,
    see above: the rows' order does not matter); the subqueries qualify the columns they
    compare with the outer row's; and sqlfluff 4.5 wants `lateral (` on a line of its own,
    indented, after a second join.
#}
-- noqa: disable=AM09,RF03,LT02
legacy as (
    select
        touched_tracks.client_id,
        touched_tracks.track_id,
        touched_tracks.user_id,
        touched_tracks.scorm_id,
        touched_tracks.sco_id,
        touched_tracks.attempt,
        touched_tracks.element,
        touched_tracks.value,
        touched_tracks.modified_epoch
    from legacy_touched
    cross join lateral (
        select *
        from legacy_tracks
        where {{
            same_client_key(
                'legacy_tracks', 'legacy_touched', ['user_id', 'scorm_id', 'sco_id', 'attempt']
            )
        }}
        offset 0
    ) as touched_tracks
),

normalised as (
    select
        touched_values.client_id,
        touched_values.value_id as track_id,
        touched_attempt.user_id,
        touched_attempt.scorm_id,
        touched_values.sco_id,
        touched_attempt.attempt,
        elements.element,
        touched_values.value,
        touched_values.modified_epoch
    from normalised_touched
    cross join lateral (
        select *
        from attempts
        where {{ same_client_key('attempts', 'normalised_touched', 'attempt_id') }}
        offset 0
    ) as touched_attempt
    cross join lateral (
        select *
        from scoes_values
        where {{
            same_client_key('scoes_values', 'normalised_touched', ['attempt_id', 'sco_id'])
        }}
        offset 0
    ) as touched_values
    inner join elements
        on {{ same_client_key('touched_values', 'elements', 'element_id') }}
),

-- noqa: enable=all
unioned as (
    select * from legacy
    union all
    select * from normalised
)

select * from unioned
