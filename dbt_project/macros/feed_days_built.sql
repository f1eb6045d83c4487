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

{% macro record_days_built(feed) -%}
    {%- if var("record_days_built") -%}
        insert into {{ feed_days_built_relation() }} (feed, client_id, report_date)
        select
            '{{ feed }}',
            client_settings.client_id,
            window_day::date
        from {{ ref('stg_moodle__client_settings') }} as client_settings
        cross join generate_series(
            '{{ var("min_date") }}'::date,
            '{{ var("max_date") }}'::date - 1,
            interval '1 day'
        ) as window_day
        where {{ client_in_build('client_settings.client_id') }}
        on conflict do nothing
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#
    On a full refresh (or a first build) the mart starts empty, so its feed forgets what it sent.
#}
{% macro forget_days_built(feed) -%}
    {%- if not is_incremental() -%}
        delete from {{ feed_days_built_relation() }} where feed = '{{ feed }}'
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
