"""`Core`: the configuration of a client and its one `requests.Session`.

A `Core` is cheap to share: many threads may call `write_records` with the same `Core` at once.
It pickles (for process pools, Dask, Spark): the copy builds its own session on the other side,
and a forked child never reuses its parent's connections.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

import requests

from ._transport import DeadlineAdapter, Route, Timeouts, install_deadline, route_for
from ._version import __version__
from .errors import ConfigurationError
from .retries import RetryConfig

__all__ = ["DEFAULT_SERVER_URL", "DEFAULT_TIMEOUT", "Core", "Timeout"]

DEFAULT_SERVER_URL: Final = "https://write.withampersand.com/v1"
DEFAULT_TIMEOUT: Final = (10.0, 60.0)
"""Seconds to connect, and seconds for the answer: an attempt takes 70 s at most."""
DEFAULT_MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
POOL_SIZE: Final = 32

ENV_API_KEY: Final = "AMPERSAND_API_KEY"
ENV_SERVER_URL: Final = "AMPERSAND_SERVER_URL"
API_KEY_HEADER: Final = "X-Api-Key"
ACCEPT: Final = "application/json, application/problem+json, text/plain;q=0.9"
USER_AGENT: Final = (
    f"ampwrite/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]} "
    f"requests/{requests.__version__}"
)

Timeout: TypeAlias = float | tuple[float, float]
ApiKey: TypeAlias = str | Callable[[], str]

_FORBIDDEN_IN_HEADERS: Final = ("\r", "\n", "\0")


def has_control_characters(text: str) -> bool:
    """True when `text` holds CR, LF or NUL, which could split or end an HTTP header."""
    return any(c in text for c in _FORBIDDEN_IN_HEADERS)


def check_api_key(key: object) -> str | ConfigurationError:
    """The key itself, or why it cannot be sent. Messages never include the key."""
    if not isinstance(key, str):
        return ConfigurationError(f"the API key must be a string, got {type(key).__name__}")
    if not key:
        return ConfigurationError("the API key is empty")
    if has_control_characters(key):
        return ConfigurationError("the API key contains CR, LF or NUL characters")
    if not (key.isascii() and key.isprintable()):
        return ConfigurationError("the API key must be printable ASCII")
    return key


MAX_TIMEOUT: Final = 1_000_000.0


def check_timeout(timeout: object) -> Timeouts | ConfigurationError:
    """Seconds for an attempt as a whole (to connect and to wait for each read as well), or a
    (connect, read) pair whose sum bounds the attempt."""
    pair = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    if len(pair) != 2 or not all(
        isinstance(part, (int, float)) and not isinstance(part, bool) and 0 < part <= MAX_TIMEOUT
        for part in pair
    ):
        return ConfigurationError(
            "timeout must be seconds (at most 1,000,000) or a (connect, read) pair of them, "
            f"got {timeout!r}"
        )
    connect, read = float(pair[0]), float(pair[1])
    return Timeouts(connect, read, connect + read if isinstance(timeout, tuple) else read)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: object, *, allow_insecure_http: bool) -> str | ConfigurationError:
    """The URL without a trailing slash, or why ampwrite will not send the key there."""
    if not isinstance(url, str) or not url:
        return ConfigurationError(f"server_url must be a non-empty string, got {url!r}")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return ConfigurationError(f"server_url {url!r} is not a valid URL: {exc}")
    if parts.scheme not in ("http", "https") or not host:
        return ConfigurationError(f"server_url must be an http(s) URL with a host, got {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        return ConfigurationError(
            "server_url must not carry a query, a fragment or credentials; "
            "pass the API key as api_key"
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(host):
        return ConfigurationError(
            f"refusing plain http:// to {host}: the API key would travel unencrypted; "
            "use https:// or pass allow_insecure_http=True"
        )
    return url.rstrip("/")


class Core:
    """Configuration and one HTTP session, shared by every call made with it.

    - `api_key`: a string, or a callable returning one (called for every request, so a
      rotated key is picked up); defaults to the `AMPERSAND_API_KEY` environment variable.
    - `server_url`: defaults to `AMPERSAND_SERVER_URL`, then the production URL.
    - `timeout`: seconds an attempt may take as a whole, or a (connect, read) pair whose sum
      bounds it; kept as `Timeouts(connect, read, total)`.
    - `retries`: the default `RetryConfig` of every call.
    - `session`: a `requests.Session` of yours (its adapters, proxies, CA bundle and headers
      apply; ampwrite never closes it). Environment proxy and CA settings are read once, here.
    - `allow_insecure_http`: permit `http://` to a host other than loopback.
    - `max_response_bytes`: answers larger than this are not read (a `TransportError`).
    - `sleep`, `clock`, `rand`: the waiting, timing and jitter of retries, injectable for tests.

    Raises `ConfigurationError` for settings it cannot work with.
    """

    def __init__(
        self,
        api_key: ApiKey | None = None,
        *,
        server_url: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: RetryConfig | None = None,
        session: requests.Session | None = None,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] | None = None,
    ) -> None:
        if api_key is None:
            api_key = os.environ.get(ENV_API_KEY)
            if api_key is None:
                raise ConfigurationError(
                    f"no API key: pass api_key=... or set the {ENV_API_KEY} environment variable"
                )
        if not callable(api_key):
            checked_key = check_api_key(api_key)
            if isinstance(checked_key, ConfigurationError):
                raise checked_key
        if server_url is None:
            server_url = os.environ.get(ENV_SERVER_URL) or DEFAULT_SERVER_URL
        url = check_server_url(server_url, allow_insecure_http=allow_insecure_http)
        if isinstance(url, ConfigurationError):
            raise url
        checked_timeout = check_timeout(timeout)
        if isinstance(checked_timeout, ConfigurationError):
            raise checked_timeout
        if retries is not None and not isinstance(retries, RetryConfig):
            raise ConfigurationError(f"retries must be a RetryConfig, got {type(retries).__name__}")
        if max_response_bytes < 1:
            raise ConfigurationError("max_response_bytes must be at least 1")
        self._api_key: ApiKey = api_key
        self.server_url: str = url
        self.timeout: Timeouts = checked_timeout
        self.retries: RetryConfig = retries or RetryConfig()
        self.allow_insecure_http = allow_insecure_http
        self.max_response_bytes = max_response_bytes
        self.sleep = sleep
        self.clock = clock
        self.rand = rand
        self._owns_session = session is None
        self.session: requests.Session = session if session is not None else _new_session()
        if session is not None:
            install_deadline(session)
        self._prepare()
        _LIVE_CORES.add(self)

    # -- what each call needs, resolved once ---------------------------------------------------

    def _prepare(self) -> None:
        """What every call needs from the session, worked out once: the route to the server
        and the constant request headers."""
        options, self.base_headers = self._resolve_session_settings(self.server_url)
        self._route = route_for(self.session, self.server_url, options)

    def _resolve_session_settings(self, url: str) -> tuple[dict[str, Any], dict[str, str]]:
        """Proxies, CA bundle and client certificate from the session and the environment
        (read now, not per call), and the constant request headers."""
        settings = self.session.merge_environment_settings(url, {}, None, None, None)
        options = {
            "proxies": settings["proxies"],
            "verify": settings["verify"],
            "cert": settings["cert"],
        }
        ours = {
            "User-Agent": USER_AGENT,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
            "Content-Type": "application/json",
        }
        if self._owns_session:
            return options, ours
        theirs = {
            name: value
            for name, value in self.session.headers.items()
            if isinstance(value, str) and name.lower() != API_KEY_HEADER.lower()
        }
        return options, merge_headers(theirs, ours)

    def route(self, url: str) -> Route:
        """How to reach the server at `url` (worked out once for the Core's own server)."""
        if url == self.server_url:
            return self._route
        return route_for(self.session, url, self._resolve_session_settings(url)[0])

    def api_key(self) -> str | ConfigurationError:
        """The key to send now; a callable key is asked each time."""
        key = self._api_key
        if callable(key):
            try:
                key = key()
            except Exception as exc:  # the caller's callable; its failure is a value here
                return ConfigurationError(f"the api_key callable raised {type(exc).__name__}")
        return check_api_key(key)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the session if ampwrite created it (a caller's session is left open)."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> Core:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _renew_session(self) -> None:
        """Fresh pools, for a forked child: sockets must not be shared with the parent."""
        if self._owns_session:
            self.session = _new_session()
        else:  # the child's copy of the caller's session: forget the parent's connections
            for adapter in self.session.adapters.values():
                adapter.close()
        self._prepare()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for transient in ("session", "_route", "base_headers", "_owns_session"):
            state.pop(transient)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._owns_session = True
        self.session = _new_session()
        self._prepare()
        _LIVE_CORES.add(self)

    def __repr__(self) -> str:
        return (
            f"Core(server_url={self.server_url!r}, timeout={self.timeout!r}, "
            f"retries={self.retries!r})"
        )


def _new_session() -> requests.Session:
    session = requests.Session()
    adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_LIVE_CORES: weakref.WeakSet[Core] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for core in list(_LIVE_CORES):
        core._renew_session()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """`base` with `extra` on top: a name in `extra` replaces that name in `base`, whatever
    the case of either."""
    replaced = {name.lower() for name in extra}
    merged = {name: value for name, value in base.items() if name.lower() not in replaced}
    merged.update(extra)
    return merged
