{#
    The CMI element names of Moodle 4.3 and newer. Ids are created on first use, so they differ
    per site: join to the values by id within a client, then select elements by name.
#}
with

source as (
    select * from {{ source('moodle', 'mdl_scorm_element') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as element_id,

        ----------  strings
        element

    from source
)

select * from renamed
