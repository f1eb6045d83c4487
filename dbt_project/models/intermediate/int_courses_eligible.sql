{#
    The courses a feed may name: every course except the site front page. Moodle stores the front
    page as a row of mdl_course (SITEID, created first by the installer, so normally id 1) with
    format 'site'; no real course has that format, so the format identifies it on every site.
#}
with

courses as (
    select * from {{ ref('stg_moodle__courses') }}
),

eligible as (
    select
        client_id,
        course_id,
        course_shortname,
        course_name
    from courses
    where course_format != 'site'
)

select * from eligible
