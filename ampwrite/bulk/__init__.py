"""``ampwrite.bulk``: write many records (thousands, millions) with exact accounting.

    from ampwrite.bulk import write_many

    for outcome in write_many(core, records, project_id_or_name="my-project",
                              integration_id="hubspot-integration",
                              object_name="contacts", group_ref="customer-42"):
        ...  # Outcome(index, status, record_id, error, operation_id)

`records` is read lazily, creates and updates travel in batches of up to 100, `concurrency`
requests are in flight at once, and every input record gets exactly one `Outcome`:
"written", "failed" (nothing written), "unknown" (maybe written: check before sending it
again) or, in asynchronous mode, "accepted". 429 and 503 answers are waited out together by
every writer. See docs/bulk.md. Not imported by ``import ampwrite``.
"""

from __future__ import annotations

from ._engine import DEFAULT_RETRIES, BulkWrites, write_many, write_partition
from ._ledger import FencedOut, Ledger, LedgerBusy, LedgerError
from ._load import FileLoad, LoadError, LoadSummary
from ._outcome import FINAL_STATUSES, STATUSES, Outcome, Progress, Status

__all__ = [
    "DEFAULT_RETRIES",
    "FINAL_STATUSES",
    "STATUSES",
    "BulkWrites",
    "FencedOut",
    "FileLoad",
    "Ledger",
    "LedgerBusy",
    "LedgerError",
    "LoadError",
    "LoadSummary",
    "Outcome",
    "Progress",
    "Status",
    "write_many",
    "write_partition",
]
