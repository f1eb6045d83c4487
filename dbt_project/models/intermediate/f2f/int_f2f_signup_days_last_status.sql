{#
    A signup's last status of each local day on which its status changed (DESIGN.md "Feeds",
    Face to face): of the status rows created that day, the one with the latest timecreated,
    and of rows created in the same second, the highest id (the plugin inserts them in order).

    Written as a correlated subquery rather than a window function or an anti-join, for the
    daily build's sake: the mart's filter on created_epoch reaches the Moodle table's branch of
    the union view only through plain joins and filters (not through a window function), and
    PostgreSQL plans this subquery once per status row of the window with the signup as a
    parameter, which Moodle's index on signupid serves. An anti-join (not exists) cannot take
    that parameter into a staging view built of CTEs, so it would read the whole history.
#}
with

statuses as (
    select * from {{ ref('int_f2f_signup_statuses_dated') }}
),

all_statuses as (
    select
        client_id,
        signup_id,
        status_id,
        created_epoch
    from {{ ref('stg_moodle__facetoface_signup_statuses') }}
),

last_of_day as (
    select
        statuses.client_id,
        statuses.signup_id,
        statuses.status_date,
        statuses.status_id,
        statuses.status_code,
        statuses.status,
        statuses.created_at,
        statuses.created_epoch,
        statuses.created_at_local
    from statuses
    where statuses.status_id = (
        select same_day.status_id
        from all_statuses as same_day
        where
            {{ same_client_key('same_day', 'statuses', 'signup_id') }}
            and same_day.created_epoch >= statuses.day_start_epoch
            and same_day.created_epoch < statuses.day_end_epoch
        order by same_day.created_epoch desc, same_day.status_id desc
        limit 1
    )
)

select * from last_of_day
