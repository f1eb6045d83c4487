{#
    The learners a feed may name: every user except
    - deleted users (deleted = 1): Moodle keeps their row but overwrites username, email and
      idnumber (moodle-schema.md §3), so there is nobody left to report;
    - the guest user, identified by username 'guest'. Moodle's installer creates it first with
      that username (and id 1, config `siteguest`), and Moodle refuses to edit the guest account,
      so the username is as stable as the id and says what it means.
    Suspended users (suspended = 1) stay: suspension blocks login, the training still happened.
#}
with

users as (
    select * from {{ ref('stg_moodle__users') }}
),

eligible as (
    select
        client_id,
        user_id,
        username,
        idnumber,
        email,
        firstname,
        lastname,
        is_suspended
    from users
    where
        not is_deleted
        and username != 'guest'
)

select * from eligible
