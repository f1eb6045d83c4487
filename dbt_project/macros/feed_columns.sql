{#
    The learner and course columns every feed mart carries, in the canonical order of
    orchestration/feeds.py (DESIGN.md "Feeds"), from int_learners_eligible and
    int_courses_eligible under the given aliases.
#}

{% macro learner_columns(learners='learners') -%}
        {{ learners }}.user_id,
        {{ learners }}.username,
        {{ learners }}.idnumber,
        {{ learners }}.email,
        {{ learners }}.firstname,
        {{ learners }}.lastname
{%- endmacro %}

{% macro course_columns(courses='courses') -%}
        {{ courses }}.course_id,
        {{ courses }}.course_shortname,
        {{ courses }}.course_name
{%- endmacro %}
