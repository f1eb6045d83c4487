{#
    The first local date a build reads changes from: min_date - lookback_days, as a SQL date
    expression. Changes that became visible late for an already built day are found back to here.
#}
{% macro lookback_start_date() -%}
    ('{{ build_setting("min_date") }}'::date - {{ build_setting("lookback_days") }})
{%- endmacro %}
