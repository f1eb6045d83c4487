{#
    A quiz's pass mark is not in mdl_quiz: Moodle keeps it as gradepass of the quiz's main grade
    item (itemtype 'mod', itemmodule 'quiz', iteminstance = quiz id, itemnumber 0), on the scale
    of the quiz's maximum grade (moodle-schema.md §5). From Moodle 4.3 a quiz may have more grade
    items (itemnumber 1 and up) for its question grade items: they are not the quiz's grade.
    0, Moodle's default, means no pass mark.

    Moodle keeps one main item per quiz, but nothing enforces it (grade_update() only warns
    "more than one grade item" and gives up), so should a site have two, the older one (lowest
    id) counts: one pass mark per quiz, and never a duplicated attempt in the feed.
#}
with

grade_items as (
    select * from {{ ref('stg_moodle__grade_items') }}
),

quiz_main_items as (
    select
        client_id,
        item_instance as quiz_id,
        grade_item_id,
        grade_pass,
        row_number() over (
            partition by client_id, item_instance
            order by grade_item_id
        ) as item_rank
    from grade_items
    where
        item_type = 'mod'
        and item_module = 'quiz'
        and item_number = 0
),

pass_marks as (
    select
        client_id,
        quiz_id,
        grade_item_id,
        grade_pass as pass_mark,
        grade_pass > 0 as has_pass_mark
    from quiz_main_items
    where item_rank = 1
)

select * from pass_marks
