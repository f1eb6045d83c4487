{#
    The end of a feed mart whose rows are its changes: each change's report day
    (macros/report_day_assignments.sql), then `final` (macros/feed_mart_final.sql), and the
    mart's select. `changes` names the CTE of changes, `feed_columns` the feed's own columns in
    the mart's order (the canonical columns of orchestration/feeds.py). The face-to-face mart,
    which keeps one change per signup and day, writes its own end from the same pieces.
    Documented in macros/_macros.yml.
#}
{% macro feed_mart_rows(changes, feed_columns) -%}
{{ report_day_assignments(changes) }},

{{ feed_mart_final('assigned', feed_columns) }}

select * from final
{%- endmacro %}
