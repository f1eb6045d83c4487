{#
    The window a mart build reads Moodle's changes from: local dates lookback_start_date() up to
    max_date (exclusive), each client in its own time zone. Three pieces, used together:

    - join_client_window(rows): joins each row to its client's window as `client_windows`
      (client_window_bounds(): per client of the build, macros/clients_in_build.sql, the window
      as epoch bounds and the client's time zone), by client_id;
    - in_client_window(epoch): an epoch column within its client's bounds (the exact rule);
    - in_widened_window(epoch): the same column within the window widened to every time zone
      (UTC-12 to UTC+14 lies within a day of UTC), as constants. It selects nothing the exact
      bounds do not, but PostgreSQL can push constants into each client's branch of the union
      views and range-scan an index on the column (Moodle's own, or one the warehouse adds:
      orchestration/moodle/replica_indexes.py), which bounds coming from a join cannot.
    - in_build_window(epoch, client_id): a row of the build, the three together: its epoch in
      its client's window, exact and widened, and its client one of the build's (a constant, so
      PostgreSQL skips the other clients' branches of the union views; clients_in_build.sql).
#}

{% macro client_window_bounds() -%}
    select
        client_id,
        timezone,
        {{ local_midnight_epoch(lookback_start_date(), 'timezone') }} as window_start_epoch,
        {{ local_midnight_epoch("'" ~ build_setting('max_date') ~ "'::date", 'timezone') }}
            as window_end_epoch
    from {{ ref('stg_moodle__client_settings') }}
    where {{ client_in_build('client_id') }}
{%- endmacro %}

{% macro join_client_window(rows) -%}
    inner join ({{ client_window_bounds() }}) as client_windows
        on {{ rows }}.client_id = client_windows.client_id
{%- endmacro %}

{% macro in_client_window(epoch, windows='client_windows') -%}
    {{ epoch }} >= {{ windows }}.window_start_epoch
    and {{ epoch }} < {{ windows }}.window_end_epoch
{%- endmacro %}

{% macro in_widened_window(epoch) -%}
    {{ epoch }} >= {{ local_midnight_epoch(lookback_start_date() ~ " - 1", "'UTC'") }}
    and {{ epoch }} < {{ local_midnight_epoch("'" ~ build_setting('max_date') ~ "'::date + 1", "'UTC'") }}
{%- endmacro %}

{% macro in_build_window(epoch, client_id) -%}
    {{ in_client_window(epoch) }}
    and {{ in_widened_window(epoch) }}
    and {{ client_in_build(client_id) }}
{%- endmacro %}
