{#
    The quizzes a feed may name: every quiz except one whose activity is being deleted
    (course_modules.deletioninprogress = 1). Moodle sets that flag when a teacher deletes the
    activity and an ad-hoc task then removes it with its attempts (after copying it into the
    recycle bin when that is on); until then Moodle treats it as gone, and so does the SCORM
    feed. The course module is found by the module's name, 'quiz', since module ids differ per
    site. A quiz without a course module row (an orphan; Moodle has no foreign keys) is kept.
#}
with

quizzes as (
    select * from {{ ref('stg_moodle__quizzes') }}
),

course_modules as (
    select * from {{ ref('stg_moodle__course_modules') }}
),

modules as (
    select * from {{ ref('stg_moodle__modules') }}
),

quizzes_being_deleted as (
    select
        course_modules.client_id,
        course_modules.instance_id as quiz_id
    from course_modules
    inner join modules
        on
            course_modules.client_id = modules.client_id
            and course_modules.module_id = modules.module_id
    where
        modules.module_name = 'quiz'
        and course_modules.is_deletion_in_progress
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
    where not exists (
        select 1 from quizzes_being_deleted
        where
            quizzes_being_deleted.client_id = quizzes.client_id
            and quizzes_being_deleted.quiz_id = quizzes.quiz_id
    )
)

select * from eligible
