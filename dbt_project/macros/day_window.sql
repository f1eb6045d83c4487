{#
    The window a mart build reads Moodle's changes from: local dates lookback_start_date() up to
    max_date (exclusive), each client in its own time zone. Three pieces, used together:

    - client_window_bounds(): per client of the build (macros/clients_in_build.sql), the window
      as epoch bounds, for a CTE `client_windows` joined to the rows by client_id;
    - in_client_window(epoch): an epoch column within its client's bounds (the exact rule);
    - in_widened_window(epoch): the same column within the window widened to every time zone
      (UTC-12 to UTC+14 lies within a day of UTC), as constants. It selects nothing the exact
      bounds do not, but PostgreSQL can push constants into each client's branch of the union
      views and range-scan an index on the column (Moodle's own, or one the warehouse adds:
      orchestration/moodle/replica_indexes.py), which bounds coming from a join cannot.
#}

{% macro client_window_bounds(client_settings) -%}
    select
        client_id,
        timezone,
        {{ local_midnight_epoch(lookback_start_date(), 'timezone') }} as window_start_epoch,
        {{ local_midnight_epoch("'" ~ var('max_date') ~ "'::date", 'timezone') }}
            as window_end_epoch
    from {{ client_settings }}
    where {{ client_in_build('client_id') }}
{%- endmacro %}

{% macro in_client_window(epoch, windows='client_windows') -%}
    {{ epoch }} >= {{ windows }}.window_start_epoch
    and {{ epoch }} < {{ windows }}.window_end_epoch
{%- endmacro %}

{% macro in_widened_window(epoch) -%}
    {{ epoch }} >= {{ local_midnight_epoch(lookback_start_date() ~ " - 1", "'UTC'") }}
    and {{ epoch }} < {{ local_midnight_epoch("'" ~ var('max_date') ~ "'::date + 1", "'UTC'") }}
{%- endmacro %}
