with

source as (
    select * from {{ source('moodle', 'mdl_scorm') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as scorm_id,
        course as course_id,

        ----------  strings
        name as scorm_name,
        {# 'SCORM_1.2', 'SCORM_1.3' (SCORM 2004) or 'AICC'; Moodle falls back to SCORM_1.2. #}
        version as scorm_version,
        {# Where the package comes from: local, localsync, external, repository, aiccurl. #}
        scormtype as package_type,

        ----------  numerics
        maxgrade as max_grade,
        {# How SCOs make an attempt's grade: 0 SCOs completed, 1 highest, 2 average, 3 sum. #}
        grademethod as grade_method,
        {# Which attempt makes the grade: 0 highest, 1 average, 2 first, 3 last completed. #}
        whatgrade as attempt_grade_method,
        {# 0 = unlimited. #}
        maxattempt as max_attempts,

        ----------  booleans
        forcecompleted = 1 as is_force_completed,
        masteryoverride = 1 as is_mastery_override,

        ----------  timestamps
        {{ epoch_to_timestamptz('timeopen') }} as opens_at,
        {{ epoch_to_timestamptz('timeclose') }} as closes_at,
        {{ epoch_to_timestamptz('timemodified') }} as modified_at

    from source
)

select * from renamed
