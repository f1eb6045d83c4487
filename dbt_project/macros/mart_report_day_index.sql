{#
    An index on (report_date, client_id) of a feed mart, made when missing (post-hook of every
    mart, dbt_project.yml). A build, its data tests and the export each read one window's days of
    some clients (macros/clients_in_build.sql, macros/rows_of_build.sql,
    get_incremental_replace_window_sql.sql): without it each of those reads the mart's whole
    history. `if not exists` also gives it to marts built before it existed.
#}
{% macro mart_report_day_index() -%}
    create index if not exists {{ this.identifier }}__report_date_client_id
    on {{ this }} (report_date, client_id)
{%- endmacro %}
