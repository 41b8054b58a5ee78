"""The inspector's guard: Host check, cross-site request refusal, response headers.

The inspector changes runs (cancel, resume), so a page on another site must not be able
to drive it through the user's browser:

- **Host check** (DNS rebinding): a request must name the inspector by a loopback name,
  an IP address, or a host the operator allowed. A rebinding attack always uses a host
  name the attacker controls, so IP literals are safe to accept, which keeps
  ``--host 0.0.0.0`` reachable by address.
- **Cross-site POSTs**: a POST whose ``Origin`` is not this host, or whose
  ``Sec-Fetch-Site`` says another site sent it, is refused (403). Browsers send one of
  them on every POST; clients that send neither (curl, scripts) are not browsers a page
  can drive.
- **Headers**: a Content-Security-Policy that allows only the app's own script, style
  attributes (bar positions) and same-origin connections; no framing (a cancel button
  must not be clickjacked); no MIME sniffing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"connect-src 'self'; img-src 'self' data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header (``[::1]:3456`` → ``::1``), lower-cased."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(name: str, allowed: frozenset[str]) -> bool:
    """Whether a request naming ``name`` may be served: a loopback name, an IP literal,
    or one of ``allowed``."""
    if name in LOOPBACK_NAMES or name in allowed:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class InspectorGuard:
    """ASGI middleware applying the checks above to every HTTP request."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(h.lower() for h in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not host_allowed(host_name(host), self.allowed):
            refusal = PlainTextResponse(
                f"wfkit web does not answer to the host {host!r}: open it by a loopback "
                "name or an IP address (or start it with that host allowed)",
                status_code=400,
            )
            await refusal(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and _cross_site(headers, host):
            await PlainTextResponse("cross-site request refused", status_code=403)(
                scope, receive, send
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cross_site(headers: Headers, host: str) -> bool:
    """Whether a mutating request came from a page of another origin."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    return urlsplit(origin).netloc.lower() != host.strip().lower()
