{#
    The feed a mart builds ('scorm', 'f2f', 'quiz', 'completion': orchestration/feeds.py), from
    its `meta.feed` config (each mart's YAML). The marts' shared config in dbt_project.yml (the
    ledger's hooks) and report_day_assignments() read it, so a mart names its feed once.
#}
{% macro mart_feed() -%}
    {{ return(config.meta_require('feed')) }}
{%- endmacro %}
