{#
    Pre-hook of the feed marts: on an incremental run, empty the report days of the build's
    window (vars min_date <= report_date < max_date) before the model's rows for them are
    appended, so rebuilding a window replaces exactly those days and leaves all others alone.
    On the first build (no table yet) and on --full-refresh there is nothing to delete.
#}
{% macro delete_report_days_in_window() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where report_date >= '{{ var("min_date") }}'::date
            and report_date < '{{ var("max_date") }}'::date
    {%- endif -%}
{%- endmacro %}
