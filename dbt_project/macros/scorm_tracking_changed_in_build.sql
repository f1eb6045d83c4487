{#
    The end of a select of SCORM tracking rows (from `rows`, with client_id and modified_epoch):
    only the rows of the build's clients whose site keeps its tracking in `tracking`'s tables
    ('legacy': mdl_scorm_scoes_track, Moodle 4.2 and older; 'normalised': Moodle 4.3 and newer,
    moodle.client_settings.scorm_tracking) and that changed in the build's window widened to
    every time zone (macros/day_window.sql in_widened_window: constants, so an index on
    timemodified serves the read). One rule for both designs' halves of
    int_scorm_tracks_unioned. Documented in macros/_macros.yml.
#}
{% macro scorm_tracking_changed_in_build(rows, tracking) -%}
    inner join {{ ref('stg_moodle__client_settings') }} as client_settings
        on {{ rows }}.client_id = client_settings.client_id
    where
        client_settings.scorm_tracking = '{{ tracking }}'
        and {{ in_widened_window(rows ~ '.modified_epoch') }}
        and {{ client_in_build(rows ~ '.client_id') }}
{%- endmacro %}
