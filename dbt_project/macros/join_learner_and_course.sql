{#
    The learner and course identity every feed row carries (DESIGN.md "Feeds"), joined on:
    int_learners_eligible as `learners` and int_courses_eligible as `courses`, inner joins, so
    a row of a deleted user, the guest user or the site front page is not sent. Documented in
    macros/_macros.yml (why a macro and not an intermediate model).
#}
{% macro join_learner_and_course(user_rows, course_rows=none) -%}
    inner join {{ ref('int_learners_eligible') }} as learners
        on
            {{ user_rows }}.client_id = learners.client_id
            and {{ user_rows }}.user_id = learners.user_id
    inner join {{ ref('int_courses_eligible') }} as courses
        on
            {{ course_rows or user_rows }}.client_id = courses.client_id
            and {{ course_rows or user_rows }}.course_id = courses.course_id
{%- endmacro %}
