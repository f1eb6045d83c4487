{#
    The end of a feed mart whose rows are its changes: each change's report day
    (macros/report_day_assignments.sql), then `final`, the mart's columns
    (macros/feed_mart_columns.sql) of every assigned change. `changes` names the CTE of changes
    (with every column the mart sends), `feed_columns` the feed's own columns in the mart's
    order. The face-to-face mart, which keeps one change per signup and day, writes its own
    `final` from the same pieces. Documented in macros/_macros.yml.
#}
{% macro feed_mart_rows(changes, feed_columns) -%}
{{ report_day_assignments(changes) }},

final as (
    select
        {{ feed_mart_columns('assigned', feed_columns) }}
    from assigned
)
{%- endmacro %}
