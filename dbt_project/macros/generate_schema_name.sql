{#
    Models land in the schema their folder names (staging, intermediate, marts), not dbt's
    default `<target schema>_<custom schema>`: Dagster, the export step and analysts all read
    `marts.<feed mart>`, whatever the target. A model without a custom schema uses the target's.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
