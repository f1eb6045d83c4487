{#
    `final`, the last CTE of every feed mart: each row of `rows` (one per change and report day,
    with client_id, report_date, change_key, entity_key, user_id, course_id and the feed's own
    columns) with the learner and course identity every feed row carries (DESIGN.md "Feeds"),
    in the mart's column order. Documented in macros/_macros.yml.
#}
{% macro feed_mart_final(rows, feed_columns) -%}
final as (
    select
        {{ rows }}.client_id,
        {{ rows }}.report_date,
        {{ rows }}.change_key,
        {{ rows }}.entity_key,
        learners.user_id,
        learners.username,
        learners.idnumber,
        learners.email,
        learners.firstname,
        learners.lastname,
        courses.course_id,
        courses.course_shortname,
        courses.course_name
        {%- for column in feed_columns %},
        {{ rows }}.{{ column }}
        {%- endfor %}
    from {{ rows }}
    {#
        Inner joins: a row of a deleted user, the guest user or the site front page is not
        sent. After the report-day rule, which they do not change: a signup, attempt or
        completion belongs to one learner and one course, so all of an entity's changes are
        left out together.
    #}
    inner join {{ ref('int_learners_eligible') }} as learners
        on {{ same_client_key(rows, 'learners', 'user_id') }}
    inner join {{ ref('int_courses_eligible') }} as courses
        on {{ same_client_key(rows, 'courses', 'course_id') }}
)
{%- endmacro %}
