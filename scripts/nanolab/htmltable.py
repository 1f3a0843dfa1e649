"""Tables a person reads in the report: numbers to 4 significant digits with SI prefixes, sortable columns.

The report shows an HTML result in an iframe, where a small script sorts a table by the column header
clicked; each number cell keeps its exact value in `data-v`, so sorting is numeric, not by the text.
On the report's first page (no scripts run there) the same tables are plain HTML.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PREFIXES = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}


def finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def si(value: object, unit: str) -> str:
    """`2.603e-8, "A"` -> `26.03 nA`: four significant digits, the prefix that leaves 1-999 before it."""
    if not finite(value):
        return ""
    if value == 0:
        return f"0 {unit}"
    exponent = min(max(3 * math.floor(math.log10(abs(value)) / 3), -15), 12)
    text = f"{value / 10**exponent:#.4g}"
    if abs(float(text)) >= 1000 and exponent < 12:  # 999.97 rounds up to the next prefix
        exponent += 3
        text = f"{value / 10**exponent:#.4g}"
    return f"{text.rstrip('.')} {PREFIXES[exponent]}{unit}"


def significant(value: object) -> str:
    """Four significant digits, without a prefix (R², counts that may be fractional)."""
    return f"{value:.4g}" if finite(value) else ""


def r_squared(value: object) -> str:
    """R² to 4 significant digits; a fit better than that reads `> 0.9999`, not a misleading `1`."""
    if not finite(value):
        return ""
    return "> 0.9999" if 0.99995 <= value < 1 else f"{value:.4g}"


def plain(value: object) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    format: Callable[[object], str] = plain
    numeric: bool = False


def text(key: str, header: str) -> Column:
    return Column(key, header)


def number(key: str, header: str, format: Callable[[object], str] = significant) -> Column:
    return Column(key, header, format, numeric=True)


def quantity(key: str, header: str, unit: str) -> Column:
    return Column(key, header, lambda value: si(value, unit), numeric=True)


def cell(column: Column, row: dict) -> str:
    value = row.get(column.key)
    shown = html.escape(column.format(value))
    if column.numeric:
        exact = repr(float(value)) if finite(value) else ""
        return f'<td class="num" data-v="{exact}">{shown}</td>'
    return f"<td>{shown}</td>"


def table(columns: Sequence[Column], rows: Sequence[dict], css_class: str = "sortable") -> str:
    """An HTML table; a row's `_link` value (already HTML) replaces the first column's text."""
    head = "".join(f'<th{" class=num" if c.numeric else ""} title="sort">{html.escape(c.header)}</th>' for c in columns)
    body = []
    for row in rows:
        cells = [cell(c, row) for c in columns]
        if row.get("_link"):
            cells[0] = f"<td>{row['_link']}</td>"
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #1e293b; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #e2e8f0; text-align: left; white-space: nowrap; }
th { background: #f1f5f9; position: sticky; top: 0; cursor: pointer; }
th[data-order="asc"]::after { content: " ▲"; } th[data-order="desc"]::after { content: " ▼"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #f8fafc; }
"""

# Click a header to sort by it (again: the other way); empty numbers last. Runs in the report's iframe.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, i) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], up = th.dataset.order !== "asc";
  th.closest("tr").querySelectorAll("th").forEach(h => delete h.dataset.order);
  th.dataset.order = up ? "asc" : "desc";
  const key = row => { const c = row.cells[i]; return c.dataset.v === undefined ? c.textContent : parseFloat(c.dataset.v); };
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    const order = typeof x === "number" ? (isNaN(x) - isNaN(y)) || (isNaN(x) ? 0 : (x - y) * (up ? 1 : -1))
                                        : x.localeCompare(y, undefined, {numeric: true}) * (up ? 1 : -1);
    return order;
  });
  body.append(...rows);
}));
"""


def page(title: str, intro: str, body: str) -> str:
    """A whole HTML page for the report's viewer: title, a line of context (HTML), the table(s)."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body><h2>{html.escape(title)}</h2><p>{intro}</p>\n{body}\n"
        f"<script>{SORT_SCRIPT}</script></body></html>\n"
    )
