r"""Campaign assignment on Spark: the rules of :mod:`rfm_engine.campaigns.assign`, per customer.

Holdout draws
-------------
:func:`holdout_draw` is :func:`rfm_engine.campaigns.assign.holdout_draw` as a Spark Column, bit
for bit: Spark's ``sha2(..., 256)`` hashes the UTF-8 bytes of
``customer_id \x1f campaign \x1f as_of`` (the same text), its first 14 hex digits (56 bits) are
read as a long by ``conv`` (integer arithmetic, no float on the way), shifted right by 3 to keep
the first 53 bits of the digest (= the first 8 bytes read big-endian, ``>> 11``), and multiplied
by ``2**-53``: a long below ``2**53`` is a double exactly, and multiplying by a power of two is
exact. A customer is so held out on Spark exactly when the DuckDB engine holds them out.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column
from pyspark.sql import functions as F

from ...io._validation import as_date

__all__ = ["holdout_draw"]

#: The separator of the hashed fields (see :func:`rfm_engine.campaigns.assign.holdout_draw`).
_SEP = "\x1f"


def holdout_draw(customer_id: Column | str, campaign: Column | str,
                 as_of: date | str) -> Column:
    r"""Deterministic uniform draws in [0, 1) as a Spark Column, for the holdout split.

    Equal, bit for bit, to :func:`rfm_engine.campaigns.assign.holdout_draw` (see the module
    docs for how the hash is read without a float on the way).

    Parameters
    ----------
    customer_id : Column or str
        The customer ids (text), or the name of their column.
    campaign : Column or str
        The campaign: a text Column (one campaign per row), or a campaign name (a literal).
    as_of : date or str
        The run date (ISO text or a date).

    Returns
    -------
    Column
        A double per row in [0, 1); null where the id or the campaign is null.
    """
    day = as_date(as_of, "as_of").isoformat()
    ids = F.col(customer_id) if isinstance(customer_id, str) else customer_id
    name = F.lit(campaign) if isinstance(campaign, str) else campaign
    text = F.concat(ids.cast("string"), F.lit(_SEP), name, F.lit(_SEP + day))
    first56 = F.conv(F.substring(F.sha2(text, 256), 1, 14), 16, 10).cast("long")
    return F.shiftright(first56, 3).cast("double") * F.lit(2.0**-53)
