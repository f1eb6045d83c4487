"""The local default: an embedded PostgreSQL and an SFTP server on 127.0.0.1, for the demo and tests."""
