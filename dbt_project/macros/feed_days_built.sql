{#
    The ledger of report days already built, per feed and client: marts.feed_days_built.
    A day in it is "delivered" for the purpose of late rows (report_day_assignments.sql): a
    rebuild of such a day re-sends what it sent before, and a change that becomes visible for
    it later goes into the next day built instead. Only Dagster's builds record days
    (var record_days_built: true); an analyst's plain `dbt build` reads the ledger but never
    writes it, so it cannot make tomorrow look delivered. A build for some clients (var
    client_ids, macros/clients_in_build.sql) records the days for those clients only.
#}
{% macro feed_days_built_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema="marts", identifier="feed_days_built")) }}
{%- endmacro %}

{% macro create_feed_days_built() -%}
    create schema if not exists marts;
    create table if not exists {{ feed_days_built_relation() }} (
        feed text not null,
        client_id text not null,
        report_date date not null,
        first_built_at timestamptz not null default now(),
        primary key (feed, client_id, report_date)
    )
{%- endmacro %}

{#
    The marts' post-hook (dbt_project.yml): the window's days of the build's clients are built.
#}
{% macro record_days_built(feed=none) -%}
    {%- if build_setting("record_days_built") -%}
        insert into {{ feed_days_built_relation() }} (feed, client_id, report_date)
        select
            '{{ feed or mart_feed() }}',
            window_report_days.client_id,
            window_report_days.report_date
        from ({{ window_report_days() }}) as window_report_days
        on conflict do nothing
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#
    The report days of a feed already built, as a select of (client_id, report_date). A first
    build (or a full refresh) starts from an empty mart and forgets the ledger
    (forget_days_built), so it reads no ledger: this also keeps dbt unit tests independent of it.
#}
{% macro days_built_of_feed(feed=none) -%}
    {%- if is_incremental() -%}
    select client_id, report_date
    from {{ feed_days_built_relation() }}
    where feed = '{{ feed or mart_feed() }}'
    {%- else -%}
    select null::text as client_id, null::date as report_date where false
    {%- endif -%}
{%- endmacro %}

{#
    On a full refresh (or a first build) the mart starts empty, so its feed forgets what it sent
    (the marts' pre-hook, dbt_project.yml).
#}
{% macro forget_days_built(feed=none) -%}
    {%- if not is_incremental() -%}
        delete from {{ feed_days_built_relation() }} where feed = '{{ feed or mart_feed() }}'
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
