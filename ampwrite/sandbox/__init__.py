"""``ampwrite.sandbox``: a local emulator of Ampersand's Write API for demos, tests and CI.

Start one with ``with Sandbox() as sb:`` and point any HTTP client at ``sb.url`` (which
includes ``/v1``) with the header ``X-Api-Key: sb.api_key``. The sandbox validates requests
like the real API (400 text/plain naming the field), stores records in memory per
(project, integration, groupRef, object), runs asynchronous writes, and can inject faults
deterministically (``Faults``, ``fail_next``, ``reset_next``).

Every write is an operation, served at the Platform API's own paths below the same
``sb.url`` (so it is the SDK's ``server_url`` and ``platform_url`` alike), with the same key:

* ``GET /v1/projects/{p}/operations/{operationId}`` - the ``Operation``: ``in_progress``,
  then ``success`` or ``failure``, a ``result`` summary such as "Batch write completed (3
  succeeded, 1 failed)", ``metadata.successfulRecordIds``
* ``GET /v1/projects/{p}/operations/{operationId}/logs`` - its log, oldest first
* ``GET /v1/projects/{p}/integrations/{i}/installations/{installationId}/operations
  ?pageSize=&pageToken=`` - the installation's operations, newest first, a page at a time

There is one installation per (project, integration, groupRef): ``sb.installation_id(...)``
gives its ID.

Python inspection: ``sb.records(...)``, ``sb.requests``, ``sb.operation(id)``,
``sb.installation_id(...)``, ``sb.reset()``, ``sb.configure_object(...)``,
``sb.add_record(...)``.

The same over HTTP, without an API key, under ``/_sandbox/``:

* ``GET /_sandbox/records?project=&integration=&object=&groupRef=`` - stored records
* ``POST /_sandbox/records`` - seed ``{"project", "integration", "object", "groupRef",
  "record"}``
* ``GET /_sandbox/requests`` - the request log (API keys shown as ``***``; bounded in
  entries and bytes, bodies over 64 KiB kept as their first 64 KiB: see ``Sandbox.requests``)
* ``POST /_sandbox/reset`` - clear records, log, operations and scripted faults
* ``GET`` / ``PUT /_sandbox/faults`` - fault settings, as ``Faults`` field names
* ``POST /_sandbox/fail-next`` ``{"status", "count"?, "retryAfter"?}`` and
  ``POST /_sandbox/reset-next`` ``{"count"?}`` - scripted faults
* ``PUT /_sandbox/objects/{objectName}`` ``{"requiredFields"?, "uniqueFields"?,
  "deleteEnabled"?}`` - object rules
* ``GET /_sandbox/installations?project=&integration=&groupRef=`` - the installations
  known so far (those writes ran for), with their IDs
* ``GET /_sandbox/health``

Every option, endpoint and fixture is described in docs/sandbox.md. Only the standard
library is used (and ``ampwrite._limits``, the constants it shares with the client), and
importing this package does not import ``argparse`` (the command-line helpers live in
``._cli``; ``python -m ampwrite.sandbox`` runs one in the foreground).
"""

from __future__ import annotations

from ._faults import Faults
from ._server import DEFAULT_API_KEY, RequestLogEntry, Sandbox
from ._validation import RequestInvalid, validate_write_request

__all__ = [
    "DEFAULT_API_KEY",
    "Faults",
    "RequestInvalid",
    "RequestLogEntry",
    "Sandbox",
    "validate_write_request",
]
