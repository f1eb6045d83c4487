{#
    Fails on every combination of the given columns that occurs more than once: the grain test
    of a model (dbt_utils.unique_combination_of_columns, written here because the project
    installs no dbt packages: nothing may be downloaded at run time).
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

duplicates as (
    select
        {% for column_name in combination_of_columns -%}
            {{ column_name }},
        {% endfor -%}
        count(*) as row_count
    from {{ model }}
    group by
        {% for column_name in combination_of_columns -%}
            {{ column_name }}{{ "," if not loop.last }}
        {% endfor %}
    having count(*) > 1
)

select * from duplicates

{% endtest %}
