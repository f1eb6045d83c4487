"""Alerts that reach a person: one message per incident (a client-day's delivery that failed after
its retries, a 05:00 deadline missed), by e-mail over SMTP and/or a webhook. The Dagster sensors
that find the incidents are in orchestration/defs/alerts.py."""
