{#
    Epoch seconds of local midnight at the start of a calendar date in a time zone: the bound of
    a local day. `timestamp at time zone` reads the wall-clock time in that zone, so the day from
    one local midnight to the next is 23 or 25 hours long when the clocks change
    (Europe/London 2026-10-25: 2026-10-24T23:00Z to 2026-10-26T00:00Z).

    Both arguments are SQL expressions, e.g. "'2026-10-25'::date" and "timezone".
#}
{% macro local_midnight_epoch(local_date, timezone) -%}
    extract(epoch from (({{ local_date }})::timestamp at time zone {{ timezone }}))::bigint
{%- endmacro %}
