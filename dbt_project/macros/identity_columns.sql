{#
    The learner and course columns every feed mart carries, in the canonical order of
    orchestration/feeds.py (DESIGN.md "Feeds"): from `learners` and `courses`, the aliases
    macros/join_learner_and_course.sql gives int_learners_eligible and int_courses_eligible, or
    both from one relation that already carries them (macros/feed_mart_columns.sql).
#}
{% macro identity_columns(learners='learners', courses='courses') -%}
        {{ learners }}.user_id,
        {{ learners }}.username,
        {{ learners }}.idnumber,
        {{ learners }}.email,
        {{ learners }}.firstname,
        {{ learners }}.lastname,
        {{ courses }}.course_id,
        {{ courses }}.course_shortname,
        {{ courses }}.course_name
{%- endmacro %}
