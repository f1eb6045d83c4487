{#
    The name a face-to-face status code is sent as (DESIGN.md "Feeds"): the plugin's
    facetoface_statuses() keys with a space for the underscore. Codes and constants from
    catalyst/moodle-mod_facetoface lib.php (moodle-schema.md §6). Code 20 (session cancelled) is
    commented out in the plugin and never written; it is named all the same, so that a site that
    patched it in still sends a status. An unknown code stays null (the mart's accepted_values
    test then fails the build rather than send a guess).

    `status_code` is a SQL expression, e.g. "statuses.status_code".
#}
{% macro f2f_status_name(status_code) -%}
    case {{ status_code }}
        when 10 then 'user cancelled'
        when 20 then 'session cancelled'
        when 30 then 'declined'
        when 40 then 'requested'
        when 50 then 'approved'
        when 60 then 'waitlisted'
        when 70 then 'booked'
        when 80 then 'no show'
        when 90 then 'partially attended'
        when 100 then 'fully attended'
    end
{%- endmacro %}
