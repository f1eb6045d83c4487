{#
    A setting of the build: the day window (min_date, max_date), lookback_days,
    record_days_built and client_ids. Every model and macro reads them through this macro, never
    with var() directly.

    Where the value comes from, first found:
    1. the var, when one is given: `dbt build --vars '{min_date: 2026-11-01, ...}'` (analysts,
       and the unit tests' `overrides: vars:`);
    2. the environment variable ODS_DBT_<NAME> (ODS_DBT_MIN_DATE, ...), holding the value as
       JSON: how Dagster passes a night's settings (orchestration/dbt_args.py);
    3. the default in the macro, which builds every day of every client and records nothing.

    Why not vars alone: dbt parses the whole project again whenever the vars differ from its
    last parse (its partial parsing compares them), and every night's window differs, so every
    build paid a full parse (about 4-5 CPU-seconds here, more as the project grows). A changed
    environment variable makes dbt parse again only the few files that read it, so a night
    parses in the time of an unchanged project.

    The defaults are here rather than under `vars:` in dbt_project.yml: a var defined there is
    always "given", and could not be told apart from one an analyst passes.
#}
{% macro build_setting(name) -%}
    {%- set build_setting_defaults = {
        "min_date": "2000-01-01",
        "max_date": "2100-01-01",
        "lookback_days": 14,
        "record_days_built": false,
        "client_ids": none,
    } -%}
    {%- if name not in build_setting_defaults -%}
        {{ exceptions.raise_compiler_error(
            "build_setting: unknown setting " ~ name ~ "; the settings are "
            ~ (build_setting_defaults.keys() | list | join(", "))
        ) }}
    {%- endif -%}
    {%- if var.has_var(name) -%}
        {{ return(var(name)) }}
    {%- endif -%}
    {%- set from_env = env_var("ODS_DBT_" ~ name | upper, "") -%}
    {%- if from_env -%}
        {{ return(fromjson(from_env)) }}
    {%- endif -%}
    {{ return(build_setting_defaults[name]) }}
{%- endmacro %}
