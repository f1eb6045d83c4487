"""Files going out: one client's CSV for one feed and day, streamed from the mart into the archive."""
