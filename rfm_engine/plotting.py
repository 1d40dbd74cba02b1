"""The one way every plot of the package gets its axes, and readable axes on them.

:func:`new_axes` makes a new Agg figure (never pyplot). :func:`label_periods` puts one
label per period on a category axis (months, quarters) only as densely as the labels fit
side by side at the size the axes are drawn: a long history shows every second, third,
sixth... period, always with the latest one, instead of labels printed over each other.
:func:`compact_amount` writes axis amounts as ``12k`` or ``1.5M``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["compact_amount", "label_periods", "new_axes"]

#: Label every n-th period, n the first of these that leaves room (calendar-friendly).
_STEPS = (1, 2, 3, 4, 6, 12, 24, 36, 48, 60, 120, 240, 600, 1200)
#: Room between two neighbouring labels, in points.
_GAP_PT = 6.0


def new_axes(width: float = 6, height: float = 4) -> Axes:
    """Return the axes of a new Agg figure (no pyplot, no global state).

    Examples
    --------
    >>> new_axes(3, 2).figure.get_size_inches().tolist()
    [3.0, 2.0]
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure.add_subplot()


def label_periods(ax: Axes, labels: Sequence[str], *, axis: str = "x",
                  fontsize: float = 9) -> Axes:
    """Label the positions ``0 .. len(labels) - 1`` of ``axis`` with ``labels``, never overlapping.

    The labels stay horizontal (easy to read). When they do not all fit side by side at
    the width (or height) the axes have when drawn, only every n-th one is shown, n from
    1, 2, 3, 4, 6, 12, ..., counted back from the last label so that the latest period
    is always labelled; every position keeps a minor tick.

    Parameters
    ----------
    ax : Axes
        The axes, with the categories drawn at ``0, 1, ...``.
    labels : sequence of str
        One label per position.
    axis : {"x", "y"}, default="x"
        Which axis.
    fontsize : float, default=9
        Size of the labels, in points.

    Returns
    -------
    Axes

    Examples
    --------
    Twelve months on a 3-inch wide figure: every fourth month fits, once drawn.

    >>> ax = new_axes(3, 2)
    >>> months = [f"2024-{m:02d}" for m in range(1, 13)]
    >>> _ = ax.plot(range(12), range(12))
    >>> ax = label_periods(ax, months)
    >>> ax.figure.canvas.draw()
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['2024-04', '2024-08', '2024-12']
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    texts = [str(label) for label in labels]
    target.set_major_locator(_period_locator_class()(texts, fontsize, axis))
    target.set_major_formatter(FuncFormatter(
        lambda value, _: texts[round(value)] if 0 <= round(value) < len(texts) else ""))
    target.set_minor_locator(FixedLocator(range(len(texts))))
    ax.tick_params(axis=axis, which="major", labelsize=fontsize, labelrotation=0)
    return ax


def compact_amount(value: float, _position: object = None) -> str:
    """Write an axis amount briefly: ``950``, ``12k``, ``1.5M``, ``2B``.

    Usable as a matplotlib tick formatter (``ax.yaxis.set_major_formatter(compact_amount)``).

    Examples
    --------
    >>> [compact_amount(v) for v in (0, 950, 12_000, 1_500_000, -2e9, 2.5)]
    ['0', '950', '12k', '1.5M', '-2B', '2.5']
    """
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:,.3g}{suffix}"
    return f"{value:,.3g}"


@cache
def _period_locator_class() -> type:
    """Return the locator class, made on first use (importing this module loads no matplotlib)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath
    from matplotlib.ticker import Locator

    class PeriodLocator(Locator):
        """Major ticks at every n-th category, n chosen at draw time from the labels' size."""

        def __init__(self, labels: list[str], fontsize: float, which: str) -> None:
            self.labels = labels
            self.which = which
            prop = FontProperties(size=fontsize)
            if which == "x":
                measure = TextToPath().get_text_width_height_descent
                widest = max((measure(t, prop, ismath=False)[0] for t in labels), default=0.0)
            else:
                widest = fontsize * 1.2  # one line of text
            self.extent_pt = widest + _GAP_PT

        def __call__(self) -> list[int]:
            vmin, vmax = self.axis.get_view_interval()
            return self.tick_values(vmin, vmax)

        def tick_values(self, vmin: float, vmax: float) -> list[int]:
            n = len(self.labels)
            if n == 0:
                return []
            axes = self.axis.axes
            size_px = axes.bbox.width if self.which == "x" else axes.bbox.height
            per_position_pt = size_px * 72.0 / axes.figure.dpi / (abs(vmax - vmin) or 1.0)
            step = next((s for s in _STEPS if s * per_position_pt >= self.extent_pt),
                        _STEPS[-1])
            return list(range(n - 1, -1, -step))[::-1]

    return PeriodLocator
