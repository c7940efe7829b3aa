"""Limits the client and the sandbox both hold to, as constants and nothing else: the sandbox
imports only the standard library and modules like this one, so the two cannot drift apart."""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_DEPTH", "MIN_API_KEY_LENGTH"]

MIN_API_KEY_LENGTH: Final = 8
"""The shortest key ampwrite sends (public as `ampwrite.core.MIN_API_KEY_LENGTH`), and so the
shortest key a sandbox can be given. Whatever a server echoes of the key is redacted from
answers, errors and logs; a shorter key is no secret worth the name, and replacing every copy
of it would mangle answers (a one-letter key is in nearly every word), so it is refused."""

MAX_DEPTH: Final = 256
"""How deep records and associations may nest: ampwrite's validation and the sandbox's both
refuse deeper ones."""
