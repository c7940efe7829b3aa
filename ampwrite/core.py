"""`Core`: the configuration of a client and its one `requests.Session`.

A `Core` is cheap to share: many threads may call `write_records` with the same `Core` at once.
It pickles (for process pools, Dask, Spark): the copy builds its own session on the other side,
and a forked child never reuses its parent's connections.
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypedDict
from urllib.parse import urlsplit

import requests

from ._headers import API_KEY_HEADER, has_control_characters, header_issues, merge_headers
from ._limits import MIN_API_KEY_LENGTH  # the shortest key sent; the sandbox holds to it too
from ._transport import POOL_SIZE, RequestsTransport, Timeouts, is_loopback
from ._version import __version__
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .retries import RetryConfig

__all__ = [
    "DEFAULT_PLATFORM_URL",
    "DEFAULT_SERVER_URL",
    "DEFAULT_TIMEOUT",
    "MIN_API_KEY_LENGTH",
    "ApiKey",
    "Core",
    "CoreOptions",
    "Timeout",
    "client_core",
]

DEFAULT_SERVER_URL: Final = "https://write.withampersand.com/v1"
DEFAULT_PLATFORM_URL: Final = "https://api.withampersand.com/v1"
"""The Platform API, where the operations of asynchronous writes are read."""
DEFAULT_TIMEOUT: Final = (10.0, 60.0)
"""Seconds to connect, and seconds for the answer: an attempt takes 70 s at most."""
DEFAULT_MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
DEFAULT_ASYNC_WORKERS: Final = POOL_SIZE
"""Threads that make the attempts of `ampwrite.aio` calls: as many as the connections kept."""

ENV_API_KEY: Final = "AMPERSAND_API_KEY"
ENV_SERVER_URL: Final = "AMPERSAND_SERVER_URL"
ENV_PLATFORM_URL: Final = "AMPERSAND_PLATFORM_URL"
ACCEPT: Final = "application/json, application/problem+json, text/plain;q=0.9"
USER_AGENT: Final = (
    f"ampwrite/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]} "
    f"requests/{requests.__version__}"
)

Timeout: TypeAlias = float | tuple[float, float]
ApiKey: TypeAlias = str | Callable[[], str]


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
    if len(key) < MIN_API_KEY_LENGTH:
        return ConfigurationError(
            f"the API key is shorter than {MIN_API_KEY_LENGTH} characters, too short to be a "
            "real key: check that the whole key was passed"
        )
    return key


MAX_TIMEOUT: Final = 1_000_000.0


def is_seconds(value: object) -> bool:
    """Whether `value` is a duration ampwrite takes: a number of seconds above 0 and at most
    `MAX_TIMEOUT` (not a bool, not NaN, not infinite)."""
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= MAX_TIMEOUT
    )


def seconds_issue(name: str, value: object) -> str | None:
    """Why `value`, given as `name`, is not a duration ampwrite takes; None when it is."""
    if is_seconds(value):
        return None
    return f"{name} must be seconds, more than 0 and at most 1,000,000, got {value!r}"


def check_timeout(timeout: object) -> Timeouts | ConfigurationError:
    """Seconds for an attempt as a whole (to connect and to wait for each read as well), or a
    (connect, read) pair whose sum bounds the attempt."""
    pair = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    if len(pair) != 2 or not all(is_seconds(part) for part in pair):
        return ConfigurationError(
            "timeout must be seconds (at most 1,000,000) or a (connect, read) pair of them, "
            f"got {timeout!r}"
        )
    connect, read = float(pair[0]), float(pair[1])
    return Timeouts(connect, read, connect + read if isinstance(timeout, tuple) else read)


def check_server_url(
    url: object, *, allow_insecure_http: bool, name: str = "server_url"
) -> str | ConfigurationError:
    """The URL without a trailing slash, or why ampwrite will not send the key there.
    `name` says where the URL came from (the argument, or an environment variable)."""
    if not isinstance(url, str) or not url:
        return ConfigurationError(f"{name} must be a non-empty string, got {url!r}")
    if any(c.isspace() or not c.isprintable() for c in url):
        return ConfigurationError(
            f"{name} {url!r} contains whitespace or control characters; "
            "a URL has none (check for a stray space or newline)"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return ConfigurationError(f"{name} {url!r} is not a valid URL: {exc}")
    if parts.scheme not in ("http", "https") or not host:
        return ConfigurationError(f"{name} must be an http(s) URL with a host, got {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        return ConfigurationError(
            f"{name} must not carry a query, a fragment or credentials; pass the API key as api_key"
        )
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(host):
        return ConfigurationError(
            f"refusing plain http:// to {host} ({name}): the API key would travel "
            "unencrypted; use https:// or pass allow_insecure_http=True"
        )
    return url.rstrip("/")


def _configured_url(
    url: str | None, name: str, env: str, default: str, allow_insecure_http: bool
) -> str:
    """The URL given as `name`, else the environment variable `env`, else `default`, checked.
    Raises ConfigurationError naming where an unusable URL came from."""
    if url is None:
        name = env
        url = os.environ.get(env) or default
    checked = check_server_url(url, allow_insecure_http=allow_insecure_http, name=name)
    if isinstance(checked, ConfigurationError):
        raise checked
    return checked


class Core:
    """Configuration and one HTTP session, shared by every call made with it.

    - `api_key`: a string, or a callable returning one (called for every request, so a
      rotated key is picked up); defaults to the `AMPERSAND_API_KEY` environment variable.
    - `server_url`: the Write API; defaults to `AMPERSAND_SERVER_URL`, then the production URL.
    - `platform_url`: the Platform API, where operations (the outcome of asynchronous writes)
      are read with the same key; defaults to `AMPERSAND_PLATFORM_URL`, then the production URL.
      It is checked like `server_url`.
    - `timeout`: seconds an attempt may take as a whole, or a (connect, read) pair whose sum
      bounds it; kept as `Timeouts(connect, read, total)`.
    - `retries`: the default `RetryConfig` of every call.
    - `session`: a `requests.Session` of yours (its adapters, proxies, CA bundle and headers
      apply; ampwrite never closes it). Environment proxy and CA settings are read once, here.
      A loopback server is always reached directly, never through a proxy. Session headers
      that ampwrite sets itself (`Host`, `Content-Length`, `Transfer-Encoding`, `TE`,
      `Trailer`, `Upgrade`) are refused; its `X-Api-Key` and requests' default
      `Connection: keep-alive` are not sent.
    - `allow_insecure_http`: permit `http://` to a host other than loopback.
    - `max_response_bytes`: answers larger than this are not read (a `TransportError`).
    - `sleep`, `clock`, `rand`: the waiting, timing and jitter of retries, injectable for tests.
    - `async_workers`: how many `ampwrite.aio` attempts may be in flight at once, across all
      event loops and threads (and how many connections they keep alive); `async_sleep`: the
      waiting of `ampwrite.aio` retries and polls (None: `asyncio.sleep`), injectable for tests.

    Raises `ConfigurationError` for settings it cannot work with. `CoreOptions` is the type of
    the keyword options, for the clients (`AmpWrite`) that take them and pass them on.
    """

    def __init__(
        self,
        api_key: ApiKey | None = None,
        *,
        server_url: str | None = None,
        platform_url: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: RetryConfig | None = None,
        session: requests.Session | None = None,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] | None = None,
        async_workers: int = DEFAULT_ASYNC_WORKERS,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
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
        url = _configured_url(
            server_url, "server_url", ENV_SERVER_URL, DEFAULT_SERVER_URL, allow_insecure_http
        )
        platform = _configured_url(
            platform_url,
            "platform_url",
            ENV_PLATFORM_URL,
            DEFAULT_PLATFORM_URL,
            allow_insecure_http,
        )
        checked_timeout = check_timeout(timeout)
        if isinstance(checked_timeout, ConfigurationError):
            raise checked_timeout
        from .retries import RetryConfig  # with the first Core, not at import: an attrs class

        if retries is not None and not isinstance(retries, RetryConfig):
            raise ConfigurationError(f"retries must be a RetryConfig, got {type(retries).__name__}")
        if max_response_bytes < 1:
            raise ConfigurationError("max_response_bytes must be at least 1")
        if (
            isinstance(async_workers, bool)
            or not isinstance(async_workers, int)
            or async_workers < 1
        ):
            raise ConfigurationError(
                f"async_workers must be a whole number of at least 1, got {async_workers!r}"
            )
        self._api_key: ApiKey = api_key
        self.server_url: str = url
        self.platform_url: str = platform
        self.timeout: Timeouts = checked_timeout
        self.retries: RetryConfig = retries or RetryConfig()
        self.allow_insecure_http = allow_insecure_http
        self.max_response_bytes = max_response_bytes
        self.sleep = sleep
        self.clock = clock
        self.rand = rand
        self.async_workers = async_workers
        self.async_sleep = async_sleep
        # connections kept: enough for the threads of ampwrite.aio as well
        self.transport = RequestsTransport(session, pool_size=max(POOL_SIZE, async_workers))
        self._prepare()
        _LIVE_CORES.add(self)

    @property
    def session(self) -> requests.Session:
        """The `requests.Session` every call goes through (yours, if you passed one)."""
        return self.transport.session

    # -- what each call needs, resolved once ---------------------------------------------------

    def _prepare(self) -> None:
        """What every call needs from the session, worked out once: the way to each server
        and the constant request headers. Raises ConfigurationError."""
        self.base_headers = self._constant_headers()
        for name, url in (("server_url", self.server_url), ("platform_url", self.platform_url)):
            unusable = self.transport.prepare(url)
            if unusable is not None:
                raise ConfigurationError(f"{name} {url!r} cannot be used: {unusable}")

    def _constant_headers(self) -> dict[str, str]:
        ours = {
            "User-Agent": USER_AGENT,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
            "Content-Type": "application/json",
        }
        if self.transport.owns_session:
            return ours
        theirs = {
            name: value.decode("latin-1") if isinstance(value, bytes) else value
            for name, value in self.session.headers.items()
            if name.lower() != API_KEY_HEADER.lower()
            and not (name.lower() == "connection" and value == "keep-alive")
        }
        issues = header_issues(theirs, "session.headers")
        if issues:
            raise ConfigurationError(
                "the session's headers cannot be sent: " + "; ".join(map(str, issues))
            )
        return merge_headers(theirs, ours)

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
        """Close the session if ampwrite created it (a caller's session is left open) and let
        the threads of `ampwrite.aio` end once their attempts are done. The Core may still
        be used afterwards: what it needs is made again."""
        self.transport.close()
        for release in ON_CLOSE:
            release(self)

    def __enter__(self) -> Core:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _renew_session(self) -> None:
        """Fresh pools, for a forked child: sockets must not be shared with the parent."""
        self.transport.after_fork()
        self._prepare()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for transient in ("transport", "base_headers"):
            state.pop(transient)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.transport = RequestsTransport(pool_size=max(POOL_SIZE, self.async_workers))
        self._prepare()
        _LIVE_CORES.add(self)

    def __repr__(self) -> str:
        return (
            f"Core(server_url={self.server_url!r}, platform_url={self.platform_url!r}, "
            f"timeout={self.timeout!r}, retries={self.retries!r})"
        )


class CoreOptions(TypedDict, total=False):
    """The keyword options of `Core`, as one type, for the clients that make a `Core`:
    `AmpWrite(api_key, **options)` (and its asyncio twin) take exactly these, typed, so that a
    misspelt name or a wrong type is a type-checker error. Each means what it means for `Core`
    (see there for the defaults); a test keeps this list and `Core`'s signature the same."""

    server_url: str | None
    platform_url: str | None
    timeout: Timeout
    retries: RetryConfig | None
    session: requests.Session | None
    allow_insecure_http: bool
    max_response_bytes: int
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    rand: Callable[[], float] | None
    async_workers: int
    async_sleep: Callable[[float], Awaitable[None]] | None


def client_core(
    api_key: ApiKey | None, core: Core | None, options: CoreOptions, *, client: str
) -> tuple[Core, bool]:
    """The `Core` a client (`client` names it, for messages) works with, and whether the client
    owns it (and so closes it): a new `Core(api_key, **options)`, or the `core` given, which
    stays the caller's. A `core` with other arguments besides is a programming error."""
    if core is None:
        return Core(api_key, **options), True
    if not isinstance(core, Core):
        raise TypeError(f"{client}(core=...) needs a Core, got {type(core).__name__}")
    if api_key is not None or options:
        given = ", ".join((["api_key"] if api_key is not None else []) + sorted(options))
        raise TypeError(
            f"{client}(core=...) takes no other argument (got {given}): the Core holds the "
            f"configuration; pass the options to Core(...) or to {client}(...) instead of core"
        )
    return core, False


_LIVE_CORES: weakref.WeakSet[Core] = weakref.WeakSet()

ON_CLOSE: list[Callable[[Core], None]] = []
"""What `Core.close` calls besides closing the transport: modules that keep resources per
Core (the thread pool of `ampwrite.aio`) register here, so the Core needs not import them."""


def _after_fork_in_child() -> None:
    for core in list(_LIVE_CORES):
        core._renew_session()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
