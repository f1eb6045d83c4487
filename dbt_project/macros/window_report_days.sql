{#
    The report days of the build's window, per client of the build: a select of
    (client_id, report_date), one row per client (macros/clients_in_build.sql) and local date
    min_date <= report_date < max_date. The days a build rebuilds (report_day_assignments.sql)
    and records as built (feed_days_built.sql record_days_built).
#}
{% macro window_report_days() -%}
    select
        client_settings.client_id,
        window_day::date as report_date
    from {{ ref('stg_moodle__client_settings') }} as client_settings
    cross join generate_series(
        '{{ build_setting("min_date") }}'::date,
        '{{ build_setting("max_date") }}'::date - 1,
        interval '1 day'
    ) as window_day
    where {{ client_in_build('client_settings.client_id') }}
{%- endmacro %}
