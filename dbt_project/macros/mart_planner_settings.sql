{#
    Planner settings for a mart's build, in its own transaction only (`set local`), run as a
    pre_hook by every feed mart.

    Why: the marts read Moodle through the union views (one branch per client, client_id a
    constant in each) and ephemeral models full of expressions (to_timestamp(nullif(...)),
    local-midnight epochs), so PostgreSQL cannot estimate their row counts. It takes a day
    window's tens of thousands of status rows, attempts or SCO-attempts for one row, and then
    (seen on a generated site of 20,000 learners, benchmarks/day_window_plans.py):
    - joins the small tables first, on client_id alone (a constant on both sides, so no real
      join key): 20,000 users x 2,000 sessions before any status row, spilling tens of GB of
      temporary files until the disk was full;
    - runs nested loops and merge joins over the window's rows, for minutes.

    So, for the mart's own statement:
    - join_collapse_limit = 1 and from_collapse_limit = 1: tables are joined in the order the
      SQL is written. Every mart is written facts first (the window's rows), then each lookup
      by its key (signup, session, learner, course), then the report-day bookkeeping;
    - no nested loops and no merge joins: hash joins suit every size here. Lookups written as
      correlated or lateral subqueries (per-key index reads) are not joins and stay as they are.

    With these, the face-to-face mart's first build on that site took 1.8 s instead of not
    finishing. Returns several statements in one hook.
#}
{% macro mart_planner_settings() -%}
set local join_collapse_limit = 1;
set local from_collapse_limit = 1;
set local enable_nestloop = off;
set local enable_mergejoin = off
{%- endmacro %}
