{#
    One row per learner × SCO × attempt, with the status and score Moodle's own reports derive
    from the CMI elements (moodle-schema.md §4.3, §4.4):
    - only scorm_scoes items of type 'sco': an 'asset' item also has a launch URL and Moodle
      writes 'completed' for it when it is opened, so its tracking is not a learner's result;
    - status: SCORM 1.2 (and AICC) cmi.core.lesson_status; SCORM 2004 (version 'SCORM_1.3')
      cmi.success_status when it is 'passed' or 'failed', else cmi.completion_status. Moodle's
      report shows completion_status only; success_status is preferred because a learner who
      completed and failed has failed. Values as stored (lowercase in Moodle), '' as null;
    - score: cmi.core.score.raw (1.2) or cmi.score.raw (2004) as stored, text; '' as null;
    - last_modified: the latest timemodified over every element of the SCO-attempt (status,
      score, suspend data, session time, x.start.time, …): the moment it last changed.
    Activities being deleted (course_modules.deletioninprogress = 1: in the recycle bin or
    queued for deletion; macros/activity_being_deleted.sql) are left out, as Moodle treats them
    as gone.

    Ephemeral like its input, int_scorm_tracks_unioned: it holds the SCO-attempts touched in the
    build's look-back window only.
#}
{{ config(materialized='ephemeral') }}

with

tracks as (
    select * from {{ ref('int_scorm_tracks_unioned') }}
),

scorms as (
    select
        client_id,
        scorm_id,
        course_id,
        scorm_name,
        scorm_version
    from {{ ref('stg_moodle__scorms') }}
),

scoes as (
    select
        client_id,
        scorm_id,
        sco_id,
        sco_name,
        sco_type
    from {{ ref('stg_moodle__scorm_scoes') }}
),

latest_elements as (
    {#
        One value per element. Moodle updates a tracking row in place, but from 4.3 nothing
        enforces one row per (attempt, SCO, element), so should one repeat, the latest (then the
        highest id) is the value Moodle would show.
    #}
    select distinct on (client_id, user_id, scorm_id, sco_id, attempt, element)
        client_id,
        user_id,
        scorm_id,
        sco_id,
        attempt,
        element,
        value,
        modified_epoch
    from tracks
    order by
        client_id asc,
        user_id asc,
        scorm_id asc,
        sco_id asc,
        attempt asc,
        element asc,
        modified_epoch desc,
        track_id desc
),

sco_attempt_elements as (
    select
        client_id,
        user_id,
        scorm_id,
        sco_id,
        attempt,
        nullif(max(value) filter (where element = 'cmi.core.lesson_status'), '')
            as lesson_status,
        nullif(max(value) filter (where element = 'cmi.completion_status'), '')
            as completion_status,
        nullif(max(value) filter (where element = 'cmi.success_status'), '')
            as success_status,
        nullif(max(value) filter (where element = 'cmi.core.score.raw'), '')
            as scorm_12_score_raw,
        nullif(max(value) filter (where element = 'cmi.score.raw'), '')
            as scorm_2004_score_raw,
        max(modified_epoch) as last_modified_epoch
    from latest_elements
    group by client_id, user_id, scorm_id, sco_id, attempt
),

pivoted as (
    select
        sco_attempt_elements.client_id,
        sco_attempt_elements.user_id,
        scorms.course_id,
        sco_attempt_elements.scorm_id,
        scorms.scorm_name,
        scorms.scorm_version,
        sco_attempt_elements.sco_id,
        scoes.sco_name,
        sco_attempt_elements.attempt,
        case
            when scorms.scorm_version = 'SCORM_1.3'
                then
                    case
                        when sco_attempt_elements.success_status in ('passed', 'failed')
                            then sco_attempt_elements.success_status
                        else sco_attempt_elements.completion_status
                    end
            else sco_attempt_elements.lesson_status
        end as status,
        case
            when scorms.scorm_version = 'SCORM_1.3'
                then sco_attempt_elements.scorm_2004_score_raw
            else sco_attempt_elements.scorm_12_score_raw
        end as score,
        sco_attempt_elements.last_modified_epoch,
        {{ epoch_to_timestamptz('sco_attempt_elements.last_modified_epoch') }}
            as last_modified_at
    from sco_attempt_elements
    inner join scoes
        on {{ same_client_key('sco_attempt_elements', 'scoes', ['sco_id', 'scorm_id']) }}
    inner join scorms
        on {{ same_client_key('sco_attempt_elements', 'scorms', 'scorm_id') }}
    where
        scoes.sco_type = 'sco'
        and not {{
            activity_being_deleted(
                'scorm', 'sco_attempt_elements.client_id', 'sco_attempt_elements.scorm_id'
            )
        }}
)

select * from pivoted
