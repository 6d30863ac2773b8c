"""``GET /``: the emulator's "Conversion events" page.

Like the vendor dashboard's page of the same name: one row per conversion
received, newest first, with its billing status, what each destination got
and which match keys it carried, and which identifiers the visitor join
recovered. Plain HTML, no JavaScript besides a refresh every few seconds, so
it works in any browser and in ``curl``. Every value is escaped: event names,
ids and custom data come from whoever posted them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["render_page"]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1d2330; }
h1 { font-size: 1.4rem; margin-bottom: .25rem; }
.usage { color: #4a5366; margin-bottom: 1.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #e3e6ee;
         vertical-align: top; }
th { background: #f5f6fa; font-weight: 600; }
code { font-size: 12px; }
.tag { display: inline-block; padding: 0 .4rem; border-radius: .6rem; font-size: 12px;
       background: #eef0f6; margin: 0 .15rem .15rem 0; }
.ok { background: #dcf5e3; } .dup { background: #fdf0d5; } .over { background: #fde2e1; }
.empty { color: #7a8296; padding: 2rem 0; }
"""


def _tags(items: Iterable[str], css: str = "") -> str:
    return "".join(f'<span class="tag {css}">{escape(item)}</span>' for item in items)


def _value(record: Mapping[str, Any]) -> str:
    conversion = record.get("conversion") or {}
    if conversion.get("value") is None:
        return ""
    return escape(f"{conversion['value']} {conversion.get('currency', '')}".strip())


def _billing(record: Mapping[str, Any]) -> str:
    billing = str(record.get("billing", ""))
    css = {"included": "ok", "overage": "over", "duplicate": "dup"}.get(billing, "")
    return _tags([billing], css)


def _destinations(record: Mapping[str, Any]) -> str:
    if record.get("duplicate"):
        return f"duplicate of #{escape(str(record.get('duplicate_of')))}: not forwarded again"
    lines = []
    for item in record.get("destinations", []):
        click = item.get("click_id")
        keys = _tags(item.get("match_keys", []))
        status = _tags([str(item.get("status"))], "ok")
        via = f" &middot; click id <code>{escape(click)}</code>" if click else ""
        lines.append(f"<div><b>{escape(item['destination'])}</b> {status}{via}<br>{keys}</div>")
    return "".join(lines) or "no active destination"


def _joined(record: Mapping[str, Any]) -> str:
    visitor = record.get("visitor")
    if not visitor:
        return ""
    if not visitor.get("found"):
        return "visitor not seen by the tracking script"
    recovered = visitor.get("recovered") or []
    return _tags(recovered, "ok") if recovered else "nothing missing"


def _row(record: Mapping[str, Any]) -> str:
    cells = [
        f"#{record.get('seq', '')}<br><small>{escape(str(record.get('received_at', '')))}</small>",
        f"<b>{escape(str(record.get('event', '')))}</b><br><code>"
        f"{escape(str(record.get('event_id', '')))}</code>",
        _value(record),
        _billing(record),
        _destinations(record),
        _joined(record),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def render_page(records: Sequence[Mapping[str, Any]], usage: Mapping[str, Any]) -> str:
    """The whole HTML page for ``records`` (oldest first) and the usage summary."""
    rows = "".join(_row(record) for record in reversed(records))
    if not rows:
        rows = (
            '<tr><td colspan="6" class="empty">No conversion events yet. Send one with '
            "<code>roasproof send purchase --value 49 --currency EUR</code> or run "
            "<code>roasproof demo</code>.</td></tr>"
        )
    summary = (
        f"Plan: {usage['tracked_conversions']} of {usage['plan_cap']} tracked conversions "
        f"({usage['overage']} overage, {usage['refused']} refused) &middot; "
        f"subscription: {escape(str(usage['subscription']))} &middot; "
        f"{usage['duplicates']} duplicates &middot; {usage['rejected']} rejected"
    )
    head = "".join(
        f"<th>{name}</th>"
        for name in ("#", "Event", "Value", "Billing", "Destinations", "Visitor join")
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='5'>"
        "<title>Conversion events: roasproof emulator</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Conversion events</h1>"
        f"<div class='usage'>{summary}</div>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        "<p class='usage'>Local emulator: nothing is sent to Meta, Google or TikTok. "
        "JSON: <a href='/api/v1/events'>/api/v1/events</a>, "
        "<a href='/api/v1/usage'>/api/v1/usage</a>.</p>"
        "</body></html>"
    )
