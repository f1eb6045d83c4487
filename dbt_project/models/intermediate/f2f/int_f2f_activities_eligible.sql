{#
    The face-to-face activities a feed may name: every one except an activity being deleted
    (course_modules.deletioninprogress = 1, macros/activity_being_deleted.sql), which Moodle
    already treats as gone, as the quiz and SCORM feeds do. An activity without a course module
    row (an orphan; Moodle has no foreign keys) is kept.
#}
with

facetofaces as (
    select * from {{ ref('stg_moodle__facetofaces') }}
),

eligible as (
    select
        facetofaces.client_id,
        facetofaces.facetoface_id,
        facetofaces.course_id,
        facetofaces.class_title
    from facetofaces
    where not {{
        activity_being_deleted('facetoface', 'facetofaces.client_id', 'facetofaces.facetoface_id')
    }}
)

select * from eligible
