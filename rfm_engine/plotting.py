"""The one way every plot of the package gets its axes: a new Agg figure, never pyplot."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["new_axes"]


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
