{#
    A join condition: two relations' rows are of the same client and have the same key. Moodle's
    ids are numbered per site, and every relation here holds the rows of all clients (the union
    views' client_id), so a join on an id alone would pair one client's rows with another's:
    every join of two clients' relations matches client_id first, here, once.

    `keys` is a column name or a list of them, compared column by column; `right_keys`, when the
    right side names them otherwise (the same order). Documented in macros/_macros.yml.
#}
{% macro same_client_key(left, right, keys, right_keys=none) -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set right_keys = keys if right_keys is none else right_keys -%}
    {%- set right_keys = [right_keys] if right_keys is string else right_keys -%}
    {{ left }}.client_id = {{ right }}.client_id
    {%- for key in keys %}
            and {{ left }}.{{ key }} = {{ right }}.{{ right_keys[loop.index0] }}
    {%- endfor %}
{%- endmacro %}
