"""Progress reporting through the standard ``logging`` module (logger ``rfm_engine``).

The library only logs; the CLI attaches a handler that prints to stderr.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

__all__ = ["logger", "step"]

logger = logging.getLogger("rfm_engine")


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """Log the start and the duration of a pipeline step.

    Examples
    --------
    >>> with step("scoring"):
    ...     pass
    """
    logger.info("%s ...", what)
    start = time.perf_counter()
    yield
    logger.info("%s done in %.2f s", what, time.perf_counter() - start)
