{#
    The quiz attempts the Quiz feed sends, with Moodle's grade, result and maximum.

    Which attempts: state 'finished' only, never a teacher's preview (preview = 1). Not sent:
    inprogress, overdue (time is up, waiting for the learner to submit), abandoned (never
    submitted), and Moodle 5's notstarted (pre-created before the quiz opens) and submitted
    (submitted, waiting for the grading task): a submitted attempt is sent once that task has made
    it finished (MDL-68806).

    The grade, as mod/quiz/locallib.php quiz_rescale_grade() (the same 3.11 to 5.x) computes it:
    raw marks × quiz.grade / quiz.sumgrades, 0 when the quiz has no marks (quiz.sumgrades below
    0.000005, grade_calculator::ALMOST_ZERO), null while the attempt needs grading. Moodle shows it
    with format_float(grade, quiz.decimalpoints), i.e. PHP round(): half away from zero, which for
    grades (never negative) is half up. PostgreSQL's round(numeric, n) rounds numeric half away
    from zero too, exactly (no binary floating point), and gives a numeric of scale n, so the
    score's text is written with exactly the quiz's decimals (61.3, 3, 61.25).

    The result compares the unrounded grade with the pass mark (int_quiz_pass_marks), as the
    gradebook does: 59.96 fails a pass mark of 60 although it is shown as 60.0.

    Attempts of a quiz that is gone (Moodle has no foreign keys; moodle-schema.md §8.13) or being
    deleted (int_quizzes_eligible) are left out by the inner join: there is no quiz name or grade
    scale to report them with.
#}
with

attempts as (
    select * from {{ ref('stg_moodle__quiz_attempts') }}
),

quizzes as (
    select * from {{ ref('int_quizzes_eligible') }}
),

pass_marks as (
    select
        client_id,
        quiz_id,
        pass_mark
    from {{ ref('int_quiz_pass_marks') }}
),

finished_attempts as (
    select * from attempts
    where
        state = 'finished'
        and not is_preview
),

rescaled as (
    select
        ----------  ids
        finished_attempts.client_id,
        finished_attempts.attempt_id,
        finished_attempts.quiz_id,
        finished_attempts.user_id,
        quizzes.course_id,

        ----------  attempt
        finished_attempts.attempt,
        quizzes.quiz_name,
        finished_attempts.sum_marks,

        ----------  the quiz's grading
        quizzes.quiz_max_grade,
        quizzes.quiz_sum_marks,
        quizzes.decimal_points,
        coalesce(pass_marks.pass_mark, 0) as pass_mark,
        case
            when finished_attempts.sum_marks is null then null
            when quizzes.quiz_sum_marks < 0.000005 then 0
            else finished_attempts.sum_marks * quizzes.quiz_max_grade / quizzes.quiz_sum_marks
        end as score_unrounded,

        ----------  timestamps
        finished_attempts.started_at,
        finished_attempts.finished_at,
        finished_attempts.modified_at,
        finished_attempts.finished_epoch,
        finished_attempts.modified_epoch

    from finished_attempts
    inner join quizzes
        on {{ same_client_key('finished_attempts', 'quizzes', 'quiz_id') }}
    left join pass_marks
        on {{ same_client_key('finished_attempts', 'pass_marks', 'quiz_id') }}
),

graded as (
    select
        client_id,
        attempt_id,
        quiz_id,
        user_id,
        course_id,
        attempt,
        quiz_name,
        sum_marks,
        quiz_max_grade,
        quiz_sum_marks,
        decimal_points,
        pass_mark,
        score_unrounded,
        round(score_unrounded, decimal_points) as score,
        round(quiz_max_grade, decimal_points) as max_score,
        case
            when sum_marks is null then 'needs grading'
            when pass_mark > 0 and score_unrounded >= pass_mark then 'passed'
            when pass_mark > 0 then 'failed'
            else 'finished'
        end as status,
        started_at,
        finished_at,
        modified_at,
        finished_epoch,
        modified_epoch
    from rescaled
)

select * from graded
