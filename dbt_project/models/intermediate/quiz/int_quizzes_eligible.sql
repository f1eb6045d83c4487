{#
    The quizzes a feed may name: every quiz except one whose activity is being deleted
    (course_modules.deletioninprogress = 1). Moodle sets that flag when a teacher deletes the
    activity and an ad-hoc task then removes it with its attempts (after copying it into the
    recycle bin when that is on); until then Moodle treats it as gone, and so do the SCORM and
    face-to-face feeds (macros/activity_being_deleted.sql). A quiz without a course module
    row (an orphan; Moodle has no foreign keys) is kept.
#}
with

quizzes as (
    select * from {{ ref('stg_moodle__quizzes') }}
),

eligible as (
    select
        quizzes.client_id,
        quizzes.quiz_id,
        quizzes.course_id,
        quizzes.quiz_name,
        quizzes.quiz_max_grade,
        quizzes.quiz_sum_marks,
        quizzes.decimal_points
    from quizzes
    where not {{ activity_being_deleted('quiz', 'quizzes.client_id', 'quizzes.quiz_id') }}
)

select * from eligible
