{#
    The activities of one module type whose course module is being deleted
    (course_modules.deletioninprogress = 1), as (client_id, instance_id): `instance_id` is the
    activity's id in its own table (mdl_quiz.id, mdl_facetoface.id). Moodle sets the flag when a
    teacher deletes the activity; an ad-hoc task then removes it with its data (after copying it
    into the recycle bin when that is on), and until then Moodle treats it as gone
    (moodle-schema.md, course_modules). The module is found by its name ('quiz', 'facetoface'),
    since module ids differ from site to site. A select statement, for a CTE.
#}
{% macro course_modules_being_deleted(module_name) -%}
    select
        course_modules.client_id,
        course_modules.instance_id
    from {{ ref('stg_moodle__course_modules') }} as course_modules
    inner join {{ ref('stg_moodle__modules') }} as modules
        on
            course_modules.client_id = modules.client_id
            and course_modules.module_id = modules.module_id
    where
        modules.module_name = '{{ module_name }}'
        and course_modules.is_deletion_in_progress
{%- endmacro %}
