{#
    Which clients a build is for: the build setting client_ids (macros/build_setting.sql), a list of client ids (the clients file's
    slugs), or none (the default) for every client in moodle.client_settings.

    Why: clients live in several time zones, and a client's day D is over only at its own
    local midnight. Dagster builds each zone's clients at 03:00 in that zone, for that zone's
    yesterday, in one dbt invocation with client_ids set to that zone's clients. London's run
    for D happens while D still has eight hours to go in Los Angeles, so it must not build,
    delete or record anything of a Los Angeles client: their D is built by Los Angeles' own
    run, at 03:00 there.

    So a build with client_ids set, and every piece of SQL that reads client_settings or deletes
    or inserts by window, keeps to those clients:
    - the client windows (macros/day_window.sql client_window_bounds) have their rows only, so
      every mart reads only their Moodle rows; the facts are also filtered by a constant
      (client_in_build on the fact's client_id), which lets PostgreSQL skip the other clients'
      branches of the union views altogether;
    - the report days of the window (macros/report_day_assignments.sql window_days) are theirs
      only: no other client's change is assigned, kept or sent;
    - the incremental delete (macros/get_incremental_replace_window_sql.sql) removes their rows
      of the window's days only: another client's rows of the same days stay as they were;
    - the ledger (macros/feed_days_built.sql record_days_built) records the days for them only,
      so another client's day does not look delivered (its late rows would otherwise wait for a
      later day, and a rebuild of its day would take in nothing).
    - the marts' data tests look at their rows of the window's days only
      (macros/rows_of_build.sql).
    A full refresh recreates a mart with every client's history, so it is refused with client_ids
    (a first build, of a mart that does not exist yet, is allowed: there is nothing to lose).

    dbt unit tests pin `client_ids: null` in their overrides, as they pin the window, so that
    they check the SQL whatever client_ids a build is given (one test sets it, to check it).

    client_ids may be given as a list (`--vars '{client_ids: [acme, zed]}'`) or, for one client,
    a string. An empty list is refused rather than taken as "every client" or "none".
#}

{% macro build_client_ids() -%}
    {%- set given = build_setting("client_ids") -%}
    {%- if given is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if given is string -%}
        {%- set given = [given] -%}
    {%- endif -%}
    {%- if given is mapping or given is not iterable or given | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            "client_ids (the var, or ODS_DBT_CLIENT_IDS) must be a non-empty list of client ids (or left out for every client), got "
            ~ (given | string)
        ) }}
    {%- endif -%}
    {%- set ids = [] -%}
    {%- for client_id in given -%}
        {%- if client_id is not string or not modules.re.match("^[a-z][a-z0-9_]{0,39}$", client_id) -%}
            {{ exceptions.raise_compiler_error(
                "client_ids (the var, or ODS_DBT_CLIENT_IDS): " ~ (client_id | string) ~ " is not a client id (a slug: a-z, 0-9, _)"
            ) }}
        {%- endif -%}
        {%- if client_id not in ids -%}
            {%- do ids.append(client_id) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if flags.FULL_REFRESH and execute -%}
        {{ exceptions.raise_compiler_error(
            "--full-refresh recreates the marts with every client's history; run it without client_ids (the var, or ODS_DBT_CLIENT_IDS)"
        ) }}
    {%- endif -%}
    {{ return(ids) }}
{%- endmacro %}

{#
    A SQL condition: `column` (a client_id expression) is one of the build's clients; `true` when
    the build is for every client. The ids are constants, so PostgreSQL can prune the union
    views' branches of other clients (client_id is a constant in each branch).
#}
{% macro client_in_build(column) -%}
    {%- set ids = build_client_ids() -%}
    {%- if ids is none -%}
        true
    {%- else -%}
        {{ column }} in ({% for client_id in ids %}'{{ client_id }}'{{ ", " if not loop.last }}{% endfor %})
    {%- endif -%}
{%- endmacro %}
