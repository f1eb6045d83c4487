"""Resources: the warehouse connection and the local archive of files made."""

from pathlib import Path

import dagster as dg
import psycopg

from orchestration import warehouse
from orchestration.clients import ClientsConfig
from orchestration.export.archive import default_archive_root


class WarehouseResource(dg.ConfigurableResource):
    """PostgreSQL named by the `PG*` environment variables (embedded server when PGHOST is unset)."""

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        return warehouse.connect(autocommit=autocommit)


class ArchiveResource(dg.ConfigurableResource):
    """The folder that keeps every file made, so any day can be re-sent byte for byte."""

    root: str

    @property
    def path(self) -> Path:
        return Path(self.root)


def archive_root(config: ClientsConfig) -> Path:
    """`archive_dir` of the clients file, else ODS_ARCHIVE_DIR, else the local default."""
    return config.archive_dir or default_archive_root()
