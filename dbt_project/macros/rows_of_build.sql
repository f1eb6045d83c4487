{#
    The marts' data tests look at the rows the build made: its window's report days
    (min_date <= report_date < max_date) of its clients (var client_ids,
    macros/clients_in_build.sql). A nightly build of one day then tests that day's rows, not the
    mart's whole history again, and a zone's build does not fail on (or wait for) another zone's
    rows. The wide default window and no client_ids keep a plain `dbt build` / `dbt test`
    testing every row.

    How: the data tests of the marts folder carry the config `rows_of_build: true`
    (dbt_project.yml), and dbt's `get_where_subquery`, which wraps the relation a data test reads,
    is overridden here to add this condition to the test's own `where` config (if any). The
    condition is rendered when the test is compiled, with the build's vars. It cannot be
    `+where: "{{ rows_of_build() }}"` in dbt_project.yml: that file is rendered when the project
    is parsed, without the project's macros, and a `where` rendered at parse time would keep the
    window of the parse (a manifest parsed once and reused would test the wrong days).
#}
{% macro rows_of_build_condition() -%}
    report_date >= '{{ build_setting("min_date") }}'::date
    and report_date < '{{ build_setting("max_date") }}'::date
    and {{ client_in_build('client_id') }}
{%- endmacro %}

{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if config.get('rows_of_build', false) -%}
        {%- set scope = rows_of_build_condition() -%}
        {%- set where = '(' ~ where ~ ') and ' ~ scope if where else scope -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
