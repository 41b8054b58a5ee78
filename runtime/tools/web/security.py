"""The inspector's guard: Host check, access token, cross-site request refusal, headers.

The inspector changes runs (cancel, resume), so a page on another site must not be able
to drive it through the user's browser, and nobody else on the network may use it:

- **Host check** (DNS rebinding): a request must name the inspector by a loopback name,
  an IP address, the host it was bound to, or a host the operator allowed. A rebinding
  attack always uses a host name the attacker controls, so IP literals are safe to
  accept, which keeps ``--host 0.0.0.0`` reachable by address.
- **Access token** (required to bind anything but a loopback address, see
  :func:`binding_problem`): every request carries it, as ``Authorization: Bearer T`` or
  as the ``wfkit_web_access`` cookie. Opening any page with ``?token=T`` sets that cookie
  (HttpOnly, SameSite=Lax) and redirects to the same page without the token in its URL.
- **Mutating requests** (anything but GET, HEAD, OPTIONS) need both:

  - an origin check: a request whose ``Origin`` is not this host, or whose
    ``Sec-Fetch-Site`` says another site sent it, is refused (403);
  - the server's CSRF token (random per server, in every page's
    ``<meta name="wfkit-csrf">`` and in a hidden ``csrf_token`` field of its forms),
    sent back in the ``X-Wfkit-Csrf`` header (scripts, the JSON twins; ``GET
    /api/csrf`` hands it out) or, for the pages' own forms, which work without
    JavaScript, as that form field. Another site can neither read the token nor send
    the header.
- **Headers**: a Content-Security-Policy that allows only the app's own script, style
  attributes (bar positions) and same-origin connections, and ``frame-ancestors 'none'``
  (a cancel button must not be clickjacked); no MIME sniffing.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-wfkit-csrf"
CSRF_FIELD = "csrf_token"
ACCESS_COOKIE = "wfkit_web_access"
ACCESS_QUERY = "token"
MAX_FORM_BYTES = 1 << 20
"""Largest form body accepted (a typed-in hook payload, not an upload)."""
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


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server on this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def binding_problem(host: str, access_token: str | None) -> str | None:
    """Why the inspector must not bind to ``host`` with ``access_token``, or None."""
    if is_loopback(host) or access_token:
        return None
    return (
        f"binding to {host} makes the inspector reachable from other machines; give it an "
        "access token (--access-token or $WFKIT_WEB_TOKEN) or bind to 127.0.0.1"
    )


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


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class InspectorGuard:
    """ASGI middleware applying the checks above to every HTTP request.

    Args:
        app: the inspector's routes.
        csrf_token: the token mutating requests must send back.
        allowed_hosts: host names served besides loopback names and IP addresses.
        access_token: when set, the token every request must carry.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        csrf_token: str,
        allowed_hosts: Iterable[str] = (),
        access_token: str | None = None,
    ) -> None:
        self.app = app
        self.csrf_token = csrf_token
        self.allowed = frozenset(h.lower() for h in allowed_hosts)
        self.access_token = access_token or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        refusal: Response | None = None
        if not host_allowed(host_name(host), self.allowed):
            refusal = PlainTextResponse(
                f"wfkit web does not answer to the host {host!r}: open it by a loopback "
                "name or an IP address (or start it with that host allowed)",
                status_code=400,
            )
        elif self.access_token is not None:
            refusal = self._access_refusal(scope, headers)
        if refusal is None and scope["method"] not in SAFE_METHODS:
            if _cross_site(headers, host):
                refusal = PlainTextResponse("cross-site request refused", status_code=403)
            elif not _same(headers.get(CSRF_HEADER), self.csrf_token):
                refusal, receive = await self._form_token_refusal(headers, receive)
        if refusal is not None:
            await _with_headers(refusal)(scope, receive, send)
            return
        await self.app(scope, receive, _with_headers_send(send))

    def _access_refusal(self, scope: Scope, headers: Headers) -> Response | None:
        """None when the request carries the access token; else the answer: a login
        redirect for ``?token=`` with the right token, a 401 otherwise."""
        assert self.access_token is not None
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(credential.strip(), self.access_token):
            return None
        cookies = _cookies(headers.get("cookie", ""))
        if _same(cookies.get(ACCESS_COOKIE), self.access_token):
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = next(iter(query.pop(ACCESS_QUERY, [])), None)
        if scope["method"] == "GET" and _same(given, self.access_token):
            rest = urlencode(query, doseq=True)
            login = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), 303)
            login.set_cookie(
                ACCESS_COOKIE, self.access_token, httponly=True, samesite="lax", path="/"
            )
            return login
        return PlainTextResponse(
            "wfkit web needs its access token: open it with ?token=… once, or send "
            "Authorization: Bearer …",
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )

    async def _form_token_refusal(
        self, headers: Headers, receive: Receive
    ) -> tuple[Response | None, Receive]:
        """Check the CSRF token in a form body (the pages' own forms send it that way).

        Returns:
            (None when the form carries the token, else the refusal; a ``receive`` that
            hands the app the body read here).
        """
        refused = PlainTextResponse(
            f"missing or wrong CSRF token: send the {CSRF_HEADER} header (GET /api/csrf) "
            "or submit the inspector's own form",
            status_code=403,
        )
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return refused, receive
        declared = headers.get("content-length", "")
        too_large = PlainTextResponse(f"form larger than {MAX_FORM_BYTES} bytes", 413)
        if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
            return too_large, receive
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return refused, receive
            body += message.get("body", b"")
            if len(body) > MAX_FORM_BYTES:
                return too_large, receive
            if not message.get("more_body", False):
                break
        fields = parse_qs(body.decode("latin-1"), keep_blank_values=True)
        if not _same(next(iter(fields.get(CSRF_FIELD, [])), None), self.csrf_token):
            return refused, receive
        return None, _replay(bytes(body), receive)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _cookies(header: str) -> dict[str, str]:
    pairs = (part.strip().partition("=") for part in header.split(";"))
    return {name: value for name, _, value in pairs if name}


def _with_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS:
        response.headers[name.decode()] = value.decode()
    return response


def _with_headers_send(send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
        await send(message)

    return send_with_headers


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
