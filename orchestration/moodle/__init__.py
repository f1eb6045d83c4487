"""Moodle data coming in: the real Moodle table definitions, synthetic sites, and the union views."""
