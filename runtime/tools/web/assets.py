"""The inspector's stylesheet and its one script, served from ``/assets/`` (no CDN, no build).

The script does four things and the pages work without it (forms post, links link):
live updates (an ``EventSource`` on the page's ``data-live`` URL; on ``change`` it fetches
the page's ``<main>`` again and swaps it in, keeping open panels and typed drafts), a
JSON check of hook payloads before they are sent, and the page's CSRF token
(``<meta name="wfkit-csrf">``) put into every form it posts, and nothing else.
"""

from __future__ import annotations

STYLESHEET = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header.top{background:#24292f;color:#fff;padding:10px 24px;display:flex;gap:16px;align-items:center}
header.top a{color:#fff;text-decoration:none;font-weight:600}
.live{margin-left:auto;font-size:12px;padding:1px 8px;border-radius:10px;background:#1a7f37}
.live.off{background:#57606a}
main{padding:16px 24px;max-width:1400px}
h1{font-size:20px;margin:8px 0 12px;overflow-wrap:anywhere}h2{font-size:16px;margin:24px 0 8px}
h3{font-size:13px;margin:12px 0 4px;color:#57606a;text-transform:uppercase}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #eaeef2;vertical-align:top}
td{overflow-wrap:anywhere}td.nowrap,td .nowrap{white-space:nowrap;overflow-wrap:normal}
th{background:#f6f8fa;font-weight:600;font-size:12px;text-transform:uppercase;color:#57606a}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#fff;border:1px solid #d0d7de;padding:8px 10px;overflow:auto;max-height:420px;margin:4px 0;
 white-space:pre-wrap;overflow-wrap:anywhere}
pre.error{background:#fff5f5;border-color:#ffb3b3}
.error-box{margin:6px 0}.error-title{font-weight:600;font-size:12px;color:#cf222e}
a{color:#0969da}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.s-pending{background:#8c959f}.s-running{background:#0969da}.s-completed{background:#1a7f37}
.s-failed{background:#cf222e}.s-cancelled{background:#9a6700}.s-waiting{background:#8250df}
.s-retrying{background:#bc4c00}.s-retried{background:#bc4c00}.s-interrupted{background:#57606a}
.s-unknown{background:#8c959f}
.s-active{background:#bf8700}.s-open{background:#0969da}.s-closed{background:#57606a}
.s-disposed{background:#8c959f}.s-conflicted{background:#cf222e}
.muted{color:#57606a}.empty{color:#57606a;font-style:italic;padding:8px 0}
.small{font-size:12px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0 0 8px}
dl.meta dt{color:#57606a}dl.meta dd{margin:0;overflow-wrap:anywhere}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin-bottom:12px}
.pager{display:flex;gap:12px;align-items:center;margin:10px 0}
.actions{display:flex;gap:8px;margin:8px 0 4px}
button{border:1px solid #d0d7de;border-radius:6px;padding:5px 14px;cursor:pointer;background:#f6f8fa;font:inherit}
button.cancel{background:#cf222e;border-color:#cf222e;color:#fff}
button.retry{background:#0969da;border-color:#0969da;color:#fff}
button.primary{background:#1f883d;border-color:#1f883d;color:#fff}
.waiting{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 12px;margin:8px 0}
.waiting-cell{font-size:12px;color:#7d4e00}
.child-of{font-size:12px}
.notice{border-radius:6px;padding:6px 12px;margin:8px 0;background:#dafbe1;border:1px solid #4ac26b}
.notice.bad{background:#ffebe9;border-color:#ff8182}
form.resume textarea{width:100%;min-height:70px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
form.resume .form-error{color:#cf222e;font-size:12px;white-space:pre-wrap}
details summary{cursor:pointer;color:#0969da}
.waterfall{background:#fff;border:1px solid #d0d7de;border-radius:6px;overflow:hidden}
.wf-row,details.lane>summary{display:grid;grid-template-columns:minmax(200px,26%) 1fr;gap:0 14px;
 align-items:center;padding:4px 12px;border-bottom:1px solid #eaeef2}
details.lane>summary{list-style:none;color:inherit}
details.lane>summary::-webkit-details-marker{display:none}
details.lane>summary:hover,details.lane[open]>summary{background:#f6f8fa}
.wf-axis{background:#f6f8fa;font-size:11px;color:#57606a}
.wf-label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.wf-label .kind{display:inline-block;width:52px;font-size:11px;text-transform:uppercase;color:#57606a}
.wf-track{position:relative;height:20px}
.wf-axis .wf-track{height:16px}
.tick{position:absolute;top:0;height:16px;border-left:1px solid #d0d7de;padding-left:3px;white-space:nowrap}
.seg{position:absolute;top:4px;height:12px;border-radius:3px;min-width:5px}
.seg-queued{background:#d0d7de}
.seg-attempt-ok{background:#1a7f37}
.seg-attempt-failed{background:#cf222e}
.seg-attempt-running{background:#0969da}
.seg-backoff{background:repeating-linear-gradient(45deg,#ffcecb 0 4px,#fff 4px 8px);border:1px solid #ff8182;min-width:3px}
.seg-sleep{background:#8250df}
.seg-hook{background:#d4a72c}
.seg-hook-listening{background:#f5e0a3;min-width:0}
.seg-child{background:#1b7c83}
.seg-run{background:#9ec5fe}
.seg-ended{min-width:0;width:2px;top:1px;height:18px;background:#57606a;border-radius:0}
.mark{position:absolute;top:1px;width:3px;height:18px;margin-left:-1px;background:#24292f;border-radius:1px}
.dur{position:absolute;top:2px;font-size:11px;color:#57606a;white-space:nowrap}
.lane-detail{padding:8px 14px 12px 26px;background:#fbfcfd;border-bottom:1px solid #eaeef2}
.lane-detail table{font-size:13px}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:#57606a;margin:4px 0 8px}
.legend .seg{position:static;display:inline-block;width:18px;vertical-align:middle;margin-right:4px}
"""

SCRIPT = r"""
(function () {
  "use strict";
  function reopen(ids) {
    ids.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
  }
  function drafts() {
    var kept = {};
    document.querySelectorAll("form.resume textarea").forEach(function (t) {
      kept[t.form.getAttribute("action")] = t.value;
    });
    return kept;
  }
  function restore(kept) {
    document.querySelectorAll("form.resume textarea").forEach(function (t) {
      var value = kept[t.form.getAttribute("action")];
      if (value !== undefined) t.value = value;
    });
  }
  var body = document.body;
  var state = document.getElementById("live-state");
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var open = Array.prototype.map.call(document.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    var kept = drafts();
    var focused = document.activeElement && document.activeElement.form ? document.activeElement.form.getAttribute("action") : null;
    fetch(location.href, { headers: { "X-Wfkit-Partial": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (markup) {
        if (markup === null) return;
        document.querySelector("main").innerHTML = markup;
        reopen(open);
        restore(kept);
        if (focused) {
          var form = document.querySelector('form[action="' + focused + '"] textarea');
          if (form) form.focus();
        }
        body.dataset.updates = String(Number(body.dataset.updates || "0") + 1);
      })
      .finally(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  if (body.dataset.live && window.EventSource) {
    // The server sends "change" (with the new state as the event id, so a reconnect
    // resumes from it) whenever what the page shows changed, and "end" when it never will.
    var source = new EventSource(body.dataset.live);
    source.addEventListener("change", refresh);
    source.addEventListener("end", function () {
      source.close();
      if (state) { state.textContent = "ended"; state.classList.add("off"); }
    });
    source.onerror = function () { if (state) state.classList.add("off"); };
    source.onopen = function () { if (state) state.classList.remove("off"); };
  }
  var csrf = document.querySelector('meta[name="wfkit-csrf"]');
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    // Every action carries the server's CSRF token (the server refuses it without).
    if (csrf && form.method && form.method.toLowerCase() === "post") {
      var field = form.querySelector("input[name=csrf_token]");
      if (!field) {
        field = document.createElement("input");
        field.type = "hidden"; field.name = "csrf_token";
        form.appendChild(field);
      }
      field.value = csrf.content;
    }
    var area = form.querySelector && form.querySelector("textarea[name=payload]");
    if (!area) return;
    var out = form.querySelector(".form-error");
    try { JSON.parse(area.value); if (out) out.textContent = ""; }
    catch (err) { ev.preventDefault(); if (out) out.textContent = "Not JSON: " + err.message; }
  });
})();
"""
