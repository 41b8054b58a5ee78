"""The inspector's HTML building blocks: escaping, the page frame, tables, badges, links.

Everything a user or a workflow wrote (names, ids, payloads, errors) goes through
:func:`esc`; no function here reads a world. No external assets: the stylesheet and
the one script are served by the app itself (``/assets/...``), which lets the
Content-Security-Policy forbid inline scripts.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from urllib.parse import quote

from wfkit.runtime.serialization.at_rest import reveal
from wfkit.runtime.tools.web.timeline import format_seconds

RUN_STATUSES = ("pending", "running", "completed", "failed", "cancelled")
ACTIVE = frozenset({"pending", "running"})
PARTIAL_HEADER = "x-wfkit-partial"
"""A request carrying this header gets only the page's ``<main>`` (live updates swap it in)."""


def esc(value: object) -> str:
    """``value`` as text, HTML-escaped (quotes too); ``None`` → ``-``."""
    if value is None:
        return "-"
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def fmt_time(value: datetime | None) -> str:
    """A timestamp with milliseconds, or ``-``."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value else "-"


def fmt_duration(start: datetime | None, end: datetime | None) -> str:
    """The time from ``start`` to ``end`` for people, or ``-`` when either is missing."""
    if start is None or end is None:
        return "-"
    return format_seconds(max(0.0, (end - start).total_seconds()))


def pretty_json(value: object) -> str:
    """Indented JSON of a stored value (anything not JSON falls back to ``str``); an
    encrypted payload opened when this process has its key, else shown as encrypted."""
    return json.dumps(reveal(value), indent=2, ensure_ascii=False, default=str)


def badge(status: str) -> str:
    """A coloured status pill."""
    return f'<span class="badge s-{esc(status)}">{esc(status)}</span>'


def run_href(run_id: str) -> str:
    """The inspector page of one run."""
    return "/runs/" + quote(run_id, safe="")


def stream_href(run_id: str, name: str) -> str:
    """The inspector page of one stream of a run."""
    return f"{run_href(run_id)}/streams/{quote(name, safe='')}"


def run_link(run_id: str) -> str:
    """A monospace link to a run's page."""
    return f'<a class="mono" href="{esc(run_href(run_id))}">{esc(run_id)}</a>'


def page(title: str, body: str, *, live_url: str | None = None, csrf_token: str = "") -> str:
    """A whole HTML document around ``body``.

    Args:
        title: the window title (escaped here).
        body: the markup of ``<main>``.
        live_url: the server-sent events endpoint that says when ``body`` changed; the
            script then fetches the page again and swaps ``<main>`` (None: a still page).
        csrf_token: the server's CSRF token, for the page's script (``security``).
    """
    live = f' data-live="{esc(live_url)}"' if live_url else ""
    indicator = (
        '<span id="live-state" class="live" title="updates as the run changes">live</span>'
        if live_url
        else ""
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="wfkit-csrf" content="{esc(csrf_token)}">'
        f"<title>{esc(title)} · wfkit</title>"
        '<link rel="stylesheet" href="/assets/inspector.css">'
        '<script src="/assets/inspector.js" defer></script></head>'
        f'<body{live}><header class="top"><a href="/">wfkit runs</a>{indicator}</header>'
        f"<main>{body}</main></body></html>\n"
    )


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    empty: str,
    row_classes: Sequence[str] = (),
) -> str:
    """An HTML table whose cells are already markup; ``empty`` when there is no row."""
    lines = []
    for index, row in enumerate(rows):
        cls = row_classes[index] if index < len(row_classes) else ""
        attr = f' class="{esc(cls)}"' if cls else ""
        lines.append(f"<tr{attr}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    if not lines:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def error_summary(error: Mapping[str, object] | None) -> str:
    """``Type: message`` of a stored error, with the type's module dropped."""
    if not error:
        return ""
    error = reveal(error)
    kind = str(error.get("type") or "")
    return f"{kind.rsplit('.', 1)[-1]}: {error.get('message', '')}"


def error_block(
    error: Mapping[str, object] | None, *, heading: str = "", open_stack: bool = False
) -> str:
    """A stored error: its type and message (wrapped), and its traceback behind a toggle."""
    if not error:
        return ""
    error = reveal(error)
    head = f"{error.get('type', '')}: {error.get('message', '')}"
    stack = str(error.get("stack") or "")
    title = f'<div class="error-title">{esc(heading)}</div>' if heading else ""
    opened = " open" if open_stack else ""
    trace = (
        f'<details{opened}><summary>traceback</summary><pre class="error">{esc(stack)}</pre></details>'
        if stack
        else ""
    )
    return f'<div class="error-box">{title}<pre class="error">{esc(head)}</pre>{trace}</div>'


def csrf_field(token: str) -> str:
    """The hidden form field carrying the CSRF token (``security``); empty without one."""
    return f'<input type="hidden" name="csrf_token" value="{esc(token)}">' if token else ""


def message_page(title: str, message: str) -> str:
    """A small page for 404s and bad requests."""
    return page(title, f"<h1>{esc(title)}</h1><p>{esc(message)}</p>")
