{#
    Every face-to-face status row on the local calendar day it was created, in the client's time
    zone, with the name it is sent as (macros/f2f_status_name.sql). The plugin writes a new
    mdl_facetoface_signups_status row for each change of a signup (timecreated = the time of the
    change) and only flips `superceded` on the older ones (moodle-schema.md §6), so these rows are
    the signup's history. A row without timecreated (0) has no day and is left out; the plugin
    always sets it. The day's bounds as epochs let the other rows of the same day be found by
    epoch alone (int_f2f_signup_days_last_status).
#}
with

client_settings as (
    select
        client_id,
        timezone
    from {{ ref('stg_moodle__client_settings') }}
),

statuses as (
    select * from {{ ref('stg_moodle__facetoface_signup_statuses') }}
),

dated as (
    select
        statuses.client_id,
        statuses.status_id,
        statuses.signup_id,
        statuses.status_code,
        {{ f2f_status_name('statuses.status_code') }} as status,
        statuses.grade,
        statuses.is_superceded,
        statuses.created_at,
        statuses.created_epoch,
        (statuses.created_at at time zone client_settings.timezone) as created_at_local,
        (statuses.created_at at time zone client_settings.timezone)::date as status_date,
        {{
            local_midnight_epoch(
                "(statuses.created_at at time zone client_settings.timezone)::date",
                "client_settings.timezone",
            )
        }} as day_start_epoch,
        {{
            local_midnight_epoch(
                "(statuses.created_at at time zone client_settings.timezone)::date + 1",
                "client_settings.timezone",
            )
        }} as day_end_epoch
    from statuses
    inner join client_settings
        on statuses.client_id = client_settings.client_id
    where statuses.created_at is not null
)

select * from dated
