"""What the UI shows of a client's file: its metadata and a preview of its first rows."""

import csv
from typing import Any

import dagster as dg

from orchestration.export import archive

PREVIEW_ROWS = 5


def preview(made: archive.ArchivedFile, rows: int = PREVIEW_ROWS) -> dg.TableMetadataValue:
    """The header and first rows of a file, as the client will see them."""
    with made.path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        records = [row for _, row in zip(range(rows), reader, strict=False)]
    return dg.MetadataValue.table(
        records=[dg.TableRecord(dict(zip(header, row, strict=True))) for row in records],
        schema=dg.TableSchema(columns=[dg.TableColumn(name=h, type="string") for h in header]),
    )


def file_metadata(made: archive.ArchivedFile) -> dict[str, Any]:
    """The CSV's facts; for a compressed or encrypted client also the file that will be sent,
    and the client's contract version for the feed."""
    metadata: dict[str, Any] = {
        "file_name": made.file_name,
        "rows": dg.MetadataValue.int(made.rows),
        "bytes": dg.MetadataValue.int(made.bytes),
        "sha256": made.sha256,
        "archive_path": dg.MetadataValue.path(str(made.path)),
        "preview": preview(made),
    }
    if made.contract_version is not None:
        metadata["contract_version"] = made.contract_version
    if made.sent_file_name is not None:
        metadata |= {
            "sent_file_name": made.sent_file_name,
            "sent_bytes": dg.MetadataValue.int(made.sent_size),
            "sent_sha256": made.sent_digest,
            "sent_archive_path": dg.MetadataValue.path(str(made.sent_path)),
        }
    return metadata
