with

source as (
    select * from {{ source('moodle', 'mdl_scorm_scoes') }}
),

renamed as (
    select
        ----------  ids
        client_id,
        id as sco_id,
        scorm as scorm_id,

        ----------  strings
        title as sco_name,
        {#
            'sco' (talks to the SCORM API, has tracking), 'asset' (a plain resource: Moodle
            writes 'completed' for it when opened) or '' (the package's organisation row).
        #}
        scormtype as sco_type,
        identifier as manifest_identifier,
        parent as manifest_parent,
        organization as manifest_organization,
        launch as launch_url,

        ----------  numerics
        sortorder as sort_order

    from source
)

select * from renamed
