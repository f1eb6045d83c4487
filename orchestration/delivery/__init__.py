"""Delivery: put each client's files in its SFTP folder atomically, trusting only its pinned key."""
