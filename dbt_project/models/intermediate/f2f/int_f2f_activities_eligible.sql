{#
    The face-to-face activities a feed may name: every one except an activity being deleted
    (course_modules.deletioninprogress = 1, macros/course_modules_being_deleted.sql), which Moodle
    already treats as gone, as the quiz and SCORM feeds do. An activity without a course module
    row (an orphan; Moodle has no foreign keys) is kept.
#}
with

facetofaces as (
    select * from {{ ref('stg_moodle__facetofaces') }}
),

facetofaces_being_deleted as (
    {{ course_modules_being_deleted('facetoface') }}
),

eligible as (
    select
        facetofaces.client_id,
        facetofaces.facetoface_id,
        facetofaces.course_id,
        facetofaces.class_title
    from facetofaces
    where not exists (
        select 1 from facetofaces_being_deleted
        where
            facetofaces_being_deleted.client_id = facetofaces.client_id
            and facetofaces_being_deleted.instance_id = facetofaces.facetoface_id
    )
)

select * from eligible
