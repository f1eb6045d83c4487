{#
    Moodle stores times as epoch seconds (UTC) in bigint columns, and 0 where NOT NULL columns
    mean "not set" (moodle-schema.md §2): 0 becomes null rather than 1970-01-01.
#}
{% macro epoch_to_timestamptz(column_name) -%}
    to_timestamp(nullif({{ column_name }}, 0))
{%- endmacro %}
