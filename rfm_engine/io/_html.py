"""HTML building blocks of the self-contained reports (run summary, KPI report, stability).

The pages are jinja2 templates, package data in ``rfm_engine/reports/templates/``
(``base.html.j2`` and ``macros.html.j2`` shared, one template per report), rendered by
:func:`render` with autoescape on: every ``{{ value }}`` is HTML-escaped, and any text in
it that looks like an email address is replaced by ``[email removed]`` first (the
environment's ``finalize``), so no report can leak an address or inject markup. Only the
shared CSS is passed as trusted markup.

Python prepares the data: :class:`Table` (from a frame, :func:`html_table`, its cells
formatted by :mod:`rfm_engine.io._format`) and :class:`Image` (an inline base64 PNG,
:func:`html_img`). Used by :mod:`rfm_engine.reports` and by
:meth:`rfm_engine.measurement.stability.StabilityReport.to_html`, so it lives below both;
the templates are read as files of the ``rfm_engine`` package (``reports/templates``), not
imported, so no import points up a layer.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import pandas as pd
from markupsafe import Markup

from .writers import png_bytes as _png_bytes

if TYPE_CHECKING:
    import jinja2
    from matplotlib.figure import Figure

_TOKEN = re.compile(r"\S+")
_PNG_DPI = 100

__all__ = ["Cell", "Image", "Table", "html_img", "html_table", "render", "report_png"]

_CSS = Markup("""
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1100px;padding:24px;color:#1a1a1a;background:#fff;line-height:1.4}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:32px 0 8px;
border-bottom:2px solid #2b8cbe;padding-bottom:4px}
.meta{color:#555;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;min-width:140px}
.card .value{font-size:1.45em;font-weight:600}.card .label{color:#555;font-size:.85em}
.table{max-width:100%;overflow-x:auto;margin:8px 0 16px}
table{border-collapse:collapse;font-size:.92em}
th,td{border-bottom:1px solid #e1e4e8;padding:5px 8px;text-align:left;vertical-align:top}
td{white-space:nowrap}th{background:#f6f8fa;vertical-align:bottom}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.table th:first-child,.table td:first-child{position:sticky;left:0;background:#fff}
.table th:first-child{background:#f6f8fa}
a{color:#0b5cad}
img{max-width:100%;height:auto;display:block;margin:8px 0}
.note{color:#555}.warn{color:#9a6700}
""")


# --------------------------------------------------------------------------- text


def _text(value: object) -> str:
    """Return ``value`` as text with anything that looks like an email address removed.

    The templates' ``finalize``: applied to every ``{{ value }}`` before autoescape; trusted
    markup (:class:`markupsafe.Markup`, the CSS and the macros' output) is left as is.

    Examples
    --------
    >>> _text("ask jane@example.com, not @jane")
    'ask [email removed] not @jane'
    """
    if isinstance(value, Markup):
        return value
    text = str(value)
    return _TOKEN.sub(_drop_email, text) if "@" in text else text


def _drop_email(token: re.Match[str]) -> str:
    # A word with an "@" between two characters, as ``\S+@\S+`` matched, in linear time.
    return "[email removed]" if "@" in token.group()[1:-1] else token.group()


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("rfm_engine", "reports/templates"),
        autoescape=True, finalize=_text, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render(template: str, **context: Any) -> str:
    """Render ``reports/templates/<template>`` with ``context`` (and the shared ``css``).

    Examples
    --------
    >>> table = html_table(pd.DataFrame({"segment": ["<script>x</script>"]}),
    ...                {"segment": ("Segment", str, False)})
    >>> page = render("stability.html.j2", title="t", meta="m", warnings=[], weeks=table,
    ...                plot=Image("data:image/png;base64,", "plot"))
    >>> "<script>" in page, "&lt;script&gt;x&lt;/script&gt;" in page
    (False, True)
    """
    return _environment().get_template(template).render(css=_CSS, **context)


@dataclass(frozen=True)
class Cell:
    """One table cell (or header): its text, whether it is a right-aligned number.

    ``title`` is a tooltip (a header's column name); ``href`` makes the text a link (a
    relative path to a file of the run, e.g. ``campaigns/winback.csv``).
    """

    text: str
    numeric: bool = False
    title: str = ""
    href: str = ""


@dataclass(frozen=True)
class Table:
    """A table for the ``table`` macro: header cells (none: no ``<thead>``) and rows."""

    head: list[Cell]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class Image:
    """An image for the ``image`` macro: its ``data:`` URI and alternative text."""

    src: Markup
    alt: str


def html_table(frame: pd.DataFrame,
               columns: Mapping[str, tuple[str, Callable[[Any], str], bool]], *,
               titles: bool = False) -> Table:
    """Return the table of the ``columns`` of ``frame``: name -> (header, formatter, numeric).

    With ``titles``, each header's tooltip is its column name.
    """
    shown = [c for c in columns if c in frame.columns]
    head = [Cell(columns[c][0], columns[c][2], title=str(c) if titles else "") for c in shown]
    rows = [[Cell(columns[c][1](v), columns[c][2]) for c, v in zip(shown, record, strict=True)]
            for record in frame[shown].itertuples(index=False)]
    return Table(head, rows)


def html_img(figure: Figure, alt: str) -> Image:
    """``figure`` as an :class:`Image`: an inline base64 PNG with the ``alt`` text."""
    data = base64.b64encode(report_png(figure)).decode("ascii")
    # Base64 holds no character HTML would escape: trusted as is (no scan of a long string).
    return Image(Markup(f"data:image/png;base64,{data}"), alt)


def report_png(figure: Figure) -> bytes:
    """Return the PNG bytes of ``figure`` at the reports' resolution."""
    return _png_bytes(figure, dpi=_PNG_DPI)
