"""Limits the client and the sandbox both hold to, as constants and nothing else: the sandbox
imports only the standard library and modules like this one, so the two cannot drift apart."""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_DEPTH"]

MAX_DEPTH: Final = 256
"""How deep records and associations may nest: ampwrite's validation and the sandbox's both
refuse deeper ones."""
