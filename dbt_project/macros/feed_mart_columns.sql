{#
    The columns of a feed mart, in the mart's order: client_id, report_date, change_key,
    entity_key, the learner and course columns (macros/identity_columns.sql), then the feed's own
    columns in the order given (the canonical columns of orchestration/feeds.py), each read from
    `rows`. Documented in macros/_macros.yml.
#}
{% macro feed_mart_columns(rows, feed_columns) -%}
        {{ rows }}.client_id,
        {{ rows }}.report_date,
        {{ rows }}.change_key,
        {{ rows }}.entity_key,
{{ identity_columns(rows, rows) }}
        {%- for column in feed_columns %},
        {{ rows }}.{{ column }}
        {%- endfor %}
{%- endmacro %}
