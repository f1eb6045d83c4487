with

source as (
    select * from {{ source('moodle', 'mdl_grade_items') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as grade_item_id,
        courseid as course_id,
        categoryid as grade_category_id,

        ----------  what the item grades
        itemtype as item_type,
        itemmodule as item_module,
        iteminstance as item_instance,
        itemnumber as item_number,

        ----------  strings
        itemname as item_name,
        idnumber as item_idnumber,

        ----------  numerics
        gradetype as grade_type,
        grademax as grade_max,
        grademin as grade_min,
        gradepass as grade_pass,

        ----------  timestamps
        {{ epoch_to_timestamptz('timecreated') }} as created_at,
        {{ epoch_to_timestamptz('timemodified') }} as modified_at

    from source
)

select * from renamed
