{#
    Incremental strategy `replace_window` of the feed marts: replace exactly the report days of
    the build's window (vars min_date <= report_date < max_date) with the model's rows.

    Why not delete+insert on unique_key='report_date': that deletes only the report dates the new
    rows carry, so a rebuilt day that has become empty would keep its stale rows. Why not a
    pre-hook delete with append: the model's select reads the mart's previous rows (which change
    was sent on which day, report_day_assignments.sql), so they must still be there while the
    select runs. dbt builds the select into a temp table first and calls this macro afterwards,
    in the same transaction.

    A build for some clients (var client_ids, macros/clients_in_build.sql) deletes only their rows
    of the window's days: the other clients' rows of the same days are theirs to rebuild, in
    their own time zone's build.
#}
{% macro get_incremental_replace_window_sql(arg_dict) -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    delete from {{ arg_dict["target_relation"] }}
    where report_date >= '{{ build_setting("min_date") }}'::date
        and report_date < '{{ build_setting("max_date") }}'::date
        and {{ client_in_build('client_id') }};
    insert into {{ arg_dict["target_relation"] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict["temp_relation"] }}
{%- endmacro %}
