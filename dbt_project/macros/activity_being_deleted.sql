{#
    A SQL condition: the activity `instance_id` (its id in its own table: mdl_quiz.id,
    mdl_scorm.id, mdl_facetoface.id) of module type `module_name` ('quiz', 'scorm',
    'facetoface') of client `client_id` has its course module being deleted
    (course_modules.deletioninprogress = 1). Moodle sets the flag when a teacher deletes the
    activity; an ad-hoc task then removes it with its data (after copying it into the recycle
    bin when that is on), and until then Moodle treats it as gone (moodle-schema.md,
    course_modules), and so do the feeds: `not {{ activity_being_deleted(...) }}`. The module is
    found by its name, since module ids differ from site to site. An activity without a course
    module row (an orphan; Moodle has no foreign keys) is not being deleted.
#}
{% macro activity_being_deleted(module_name, client_id, instance_id) -%}
    exists (
        select 1
        from {{ ref('stg_moodle__course_modules') }} as course_modules
        inner join {{ ref('stg_moodle__modules') }} as modules
            on {{ same_client_key('course_modules', 'modules', 'module_id') }}
        where
            modules.module_name = '{{ module_name }}'
            and course_modules.is_deletion_in_progress
            and course_modules.client_id = {{ client_id }}
            and course_modules.instance_id = {{ instance_id }}
    )
{%- endmacro %}
