"""HTML building blocks of the self-contained reports (run summary, KPI report, stability).

Escaping with anything that looks like an email address removed (:func:`_text`), the number
formats of the HTML tables (``–`` for a missing value), a table renderer, inline base64 PNG
images and the shared CSS. Used by :mod:`rfm_engine.reports` and by
:meth:`rfm_engine.measurement.stability.StabilityReport.to_html`, so it lives below both.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .writers import png_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_EMAIL = re.compile(r"\S+@\S+")
_PNG_DPI = 100

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1100px;padding:24px;color:#1a1a1a;background:#fff;line-height:1.4}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:32px 0 8px;
border-bottom:2px solid #2b8cbe;padding-bottom:4px}
.meta{color:#555;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;min-width:140px}
.card .value{font-size:1.45em;font-weight:600}.card .label{color:#555;font-size:.85em}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.92em}
th,td{border-bottom:1px solid #e1e4e8;padding:5px 10px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:8px 0}
.note{color:#555}.warn{color:#9a6700}
"""


# --------------------------------------------------------------------------- text


def _text(value: object) -> str:
    """Escape ``value`` for HTML, with anything that looks like an email removed."""
    return html.escape(_EMAIL.sub("[email removed]", str(value)))


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, arrays
        return False


def _integer(value: object) -> str:
    return "–" if _missing(value) else f"{int(round(float(value))):,}"


def _percent(value: object) -> str:
    return "–" if _missing(value) else f"{float(value):.1%}"


def _money(value: object) -> str:
    return "–" if _missing(value) else f"{float(value):,.2f}"


def _decimal(value: object) -> str:
    return "–" if _missing(value) else f"{float(value):,.1f}"


def _number(value: object) -> str:
    """Integers with thousands separators, other floats with one decimal, text as is."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return "–" if value is None else str(value)
    if _missing(value):
        return "–"
    return _integer(value) if float(value).is_integer() else _decimal(value)


def _listing(value: object) -> str:
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(str(v) for v in value)
    return "–" if _missing(value) else str(value)


def _table(frame: pd.DataFrame, columns: Mapping[str, tuple[str, Callable[[Any], str], bool]]
           ) -> str:
    """Render the ``columns`` of ``frame``: name -> (header, formatter, numeric)."""
    shown = [c for c in columns if c in frame.columns]
    head = "".join(f'<th{" class=num" if columns[c][2] else ""}>{_text(columns[c][0])}</th>'
                   for c in shown)
    rows = []
    for record in frame[shown].itertuples(index=False):
        cells = "".join(
            f'<td{" class=num" if columns[c][2] else ""}>{_text(columns[c][1](v))}</td>'
            for c, v in zip(shown, record, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _img(figure: Figure, alt: str) -> str:
    data = base64.b64encode(_png_bytes(figure)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_text(alt)}">'


def _png_bytes(figure: Figure) -> bytes:
    return png_bytes(figure, dpi=_PNG_DPI)
