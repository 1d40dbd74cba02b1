"""Cross-sell and up-sell suggestions, computed in DuckDB from what similar customers bought.

Similar customers are the customers of the same segment. Both suggestions aggregate
customer x item in one DuckDB query (never line-level data in pandas), and only the
customers asked for (``targets``: in the weekly run, the customers of the resurrection
campaigns) are paired with their segment's ranking, so the cost is one pass over the lines
plus the targets' candidate pairs.

Each function takes the lines either as a DataFrame (validated like every other input) or
as loaded :class:`~rfm_engine.io.loading.Transactions` (read straight from their DuckDB
view, amounts summed exactly as decimals).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ..io._validation import id_array, is_int, numeric_column, require_columns
from ..io.loading import Transactions, connect

__all__ = ["suggest_products", "suggest_upsell"]


def suggest_products(
    transactions: pd.DataFrame | Transactions,
    customers: pd.DataFrame,
    *,
    by: str = "category",
    k: int = 3,
    targets: Sequence[Any] | None = None,
) -> pd.Series:
    """Cross-sell: items similar customers buy most that a customer has not bought yet.

    A customer has bought an item when their net ``amount`` on it is above zero (a fully
    returned item does not count). For each customer, the items bought by customers of the
    same segment are ranked by how many of those customers bought them (ties: item name);
    the first ``k`` the customer has not bought are suggested.

    Parameters
    ----------
    transactions : DataFrame or Transactions
        ``customer_id``, the ``by`` column and ``amount``. Rows without an item are ignored.
    customers : DataFrame
        ``customer_id`` and ``segment``. Customers without a segment get no suggestion.
    by : str, default="category"
        The item column: ``"category"`` or ``"product_id"`` (or any other column).
    k : int, default=3
        At most this many suggestions per customer.
    targets : sequence, optional
        Customer ids to suggest for (default: every customer); the ranking still counts
        every customer of the segment.

    Returns
    -------
    Series
        Indexed by ``customer_id`` in the order of ``customers``, named ``cross_sell``:
        the suggestions joined by ``"|"``, best first; NA when there is none (and for
        customers not in ``targets``).

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c", "c", "d"],
    ...                    "category": ["tea", "mugs", "tea", "cake", "tea", "cake", "jam"],
    ...                    "amount": [5.0, 8.0, 4.0, 3.0, 6.0, 2.0, 9.0]})
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
    ...                           "segment": ["loyal", "loyal", "loyal", "new"]})
    >>> suggest_products(tx, customers, k=2).to_dict()
    {'a': 'cake', 'b': 'mugs', 'c': 'mugs', 'd': nan}
    """
    if not is_int(k) or k < 1:
        raise ConfigError(f"The 'k' parameter of suggest_products must be an int >= 1. "
                          f"Got {k!r} instead.")
    with _Inputs(transactions, customers, {"item": by}, targets) as inputs:
        found = inputs.con.execute(f"""
            WITH bought AS (
                SELECT cid, item FROM {inputs.lines} WHERE item IS NOT NULL
                GROUP BY cid, item HAVING sum(amount) > 0
            ), ranking AS (
                SELECT segment, item,
                       row_number() OVER (PARTITION BY segment
                                          ORDER BY count(*) DESC, item) AS r
                FROM bought JOIN {inputs.segments} USING (cid) GROUP BY segment, item
            ), n_bought AS (
                SELECT cid, count(*) AS n FROM bought GROUP BY cid
            ), wanted AS (
                SELECT cid, segment, coalesce(n, 0) AS n
                FROM {inputs.wanted} LEFT JOIN n_bought USING (cid)
            ), pairs AS (  -- the first k + n items of the ranking hold k unbought ones
                SELECT w.cid, r.item, r.r
                FROM wanted w JOIN ranking r ON r.segment = w.segment AND r.r <= {k} + w.n
                ANTI JOIN bought b ON b.cid = w.cid AND b.item = r.item
            )
            SELECT cid, array_to_string(arg_min(item, r, {k}), '|') AS suggestion
            FROM pairs GROUP BY cid
        """).df()
        return inputs.series(found, "cross_sell")


def suggest_upsell(
    transactions: pd.DataFrame | Transactions,
    customers: pd.DataFrame,
    *,
    category: str = "category",
    product: str = "product_id",
    targets: Sequence[Any] | None = None,
) -> pd.Series:
    """Up-sell: a pricier product, in a customer's main category, that similar customers buy.

    Kept simple, per customer:

    - units: ``quantity`` when the transactions have it, else ``amount / unit_price`` when
      they have ``unit_price``, else one unit per row; a (customer, product) counts as
      bought when its net amount and net units are above zero;
    - the main category is the one with the highest net amount spent (ties: category name),
      and the customer usually pays their average unit price there (amount / units);
    - a product's price is its average unit price over all bought (customer, product) pairs;
    - the suggestion is the product of the main category, priced above what the customer
      usually pays and not yet bought by them, that the most customers of the same segment
      bought (ties: product name). NA when there is none.

    Parameters
    ----------
    transactions : DataFrame or Transactions
        ``customer_id``, the ``category`` and ``product`` columns and ``amount``; optional
        ``quantity`` or ``unit_price`` (a DataFrame only: loaded transactions keep the
        amount alone, so a row is a unit).
    customers : DataFrame
        ``customer_id`` and ``segment``.
    category : str, default="category"
        The category column.
    product : str, default="product_id"
        The product column.
    targets : sequence, optional
        Customer ids to suggest for (default: every customer).

    Returns
    -------
    Series
        Indexed by ``customer_id`` in the order of ``customers``, named ``upsell``: one
        product id or NA.

    Examples
    --------
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "b", "b", "c", "c", "d"],
    ...     "category": ["tea"] * 6,
    ...     "product_id": ["green", "green", "gold", "gold", "white", "white"],
    ...     "amount": [4.0, 4.0, 12.0, 12.0, 9.0, 9.0]})
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "segment": "loyal"})
    >>> suggest_upsell(tx, customers).to_dict()
    {'a': 'gold', 'b': 'white', 'c': nan, 'd': 'gold'}
    """
    with _Inputs(transactions, customers, {"cat": category, "item": product},
                 targets, units=True) as inputs:
        found = inputs.con.execute(f"""
            WITH lines AS MATERIALIZED (
                SELECT cid, cat, item, sum(amount) AS amount, sum(units) AS units
                FROM {inputs.lines} WHERE cat IS NOT NULL AND item IS NOT NULL
                GROUP BY cid, cat, item HAVING sum(amount) > 0 AND sum(units) > 0
            ), price AS (
                SELECT cat, item, sum(amount) / sum(units) AS price FROM lines GROUP BY cat, item
            ), popular AS MATERIALIZED (
                SELECT segment, cat, item, count(*) AS n, any_value(price) AS price
                FROM lines JOIN {inputs.segments} USING (cid) JOIN price USING (cat, item)
                GROUP BY segment, cat, item
            ), wanted AS MATERIALIZED (  -- each target's main category and usual unit price
                SELECT cid, segment, arg_min(cat, (-amount, cat)) AS cat,
                       arg_min(amount / units, (-amount, cat)) AS usual
                FROM (SELECT cid, cat, sum(amount) AS amount, sum(units) AS units
                      FROM lines SEMI JOIN {inputs.wanted} USING (cid) GROUP BY cid, cat)
                JOIN {inputs.wanted} USING (cid) GROUP BY cid, segment
            ), pairs AS (
                SELECT w.cid, p.item, p.n
                FROM wanted w JOIN popular p ON p.segment = w.segment AND p.cat = w.cat
                WHERE p.price > w.usual
            ), unowned AS (
                SELECT * FROM pairs ANTI JOIN lines o ON o.cid = pairs.cid AND o.item = pairs.item
            )
            SELECT cid, arg_min(item, (-n, item)) AS suggestion FROM unowned GROUP BY cid
        """).df()
        return inputs.series(found, "upsell")


class _Inputs:
    """The lines, segments and targets of a suggestion as DuckDB relations.

    ``lines``: ``cid`` and the named item columns (text), ``amount`` (and ``units``);
    ``segments``: ``cid, segment`` of the customers with a segment; ``wanted``: the same
    limited to the targets. A DataFrame is validated and registered on a connection of
    its own; loaded transactions are read from their view, on their connection.
    """

    def __init__(self, transactions: pd.DataFrame | Transactions, customers: pd.DataFrame,
                 items: dict[str, str], targets: Sequence[Any] | None, *,
                 units: bool = False) -> None:
        require_columns(customers, ["customer_id", "segment"], "customers")
        self.ids = pd.Index(id_array(customers["customer_id"], source="customers"))
        segments = pd.DataFrame({"cid": self.ids.to_numpy(dtype=object),
                                 "segment": customers["segment"].to_numpy(dtype=object)})
        segments = segments.dropna(subset=["segment"]).astype({"segment": str})
        wanted = (segments if targets is None else segments[segments["cid"].isin(
            pd.Index(id_array(pd.Series(list(targets), dtype=object), source="targets")))])
        self._names = []
        if isinstance(transactions, Transactions):
            require_columns(pd.DataFrame(columns=list(transactions.columns)),
                            list(items.values()), "transactions")
            self.con = transactions.con
            select = ", ".join(f"CAST({col} AS VARCHAR) AS {name}" for name, col in items.items())
            self.lines = self._view(f"SELECT customer_id AS cid, {select}, amount"
                                    f"{', 1 AS units' if units else ''} FROM transactions")
            self._own = False
        else:
            self.con, self._own = connect(), True
            self.lines = self._register(_lines_frame(transactions, items, units=units))
        self.segments = self._register(segments)
        self.wanted = self._register(wanted)

    def _register(self, frame: pd.DataFrame) -> str:
        name = f"_rfm_suggest_{len(self._names)}_{id(self):x}"
        self.con.register(name, frame)
        self._names.append(("view", name))
        return name

    def _view(self, sql: str) -> str:
        name = f"_rfm_suggest_lines_{id(self):x}"
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
        self._names.append(("temp view", name))
        return name

    def series(self, found: pd.DataFrame, name: str) -> pd.Series:
        """Suggestions ``found`` (``cid, suggestion``) in the order of the customers."""
        out = found.set_index("cid")["suggestion"].reindex(self.ids)
        return pd.Series(out.to_numpy(dtype=object), index=pd.Index(
            self.ids, name="customer_id"), dtype="str", name=name)

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own:
            self.con.close()
            return
        for kind, name in self._names:
            if kind == "view":
                self.con.unregister(name)
            else:
                self.con.execute(f"DROP VIEW IF EXISTS {name}")


def _lines_frame(transactions: pd.DataFrame, items: dict[str, str], *,
                 units: bool) -> pd.DataFrame:
    """Validate a DataFrame of lines into ``cid``, the item columns, ``amount`` (``units``)."""
    require_columns(transactions, ["customer_id", *items.values(), "amount"], "transactions")
    lines = pd.DataFrame({
        "cid": id_array(transactions["customer_id"], source="transactions"),
        **{name: _text(transactions[col]) for name, col in items.items()},
        "amount": numeric_column(transactions["amount"], "amount", "transactions"),
    })
    if units:
        if "quantity" in transactions.columns:
            lines["units"] = numeric_column(transactions["quantity"], "quantity",
                                             "transactions")
        elif "unit_price" in transactions.columns:
            lines["units"] = lines["amount"] / numeric_column(
                transactions["unit_price"], "unit_price", "transactions")
        else:
            lines["units"] = 1.0
    return lines


def _text(column: pd.Series) -> pd.Series:
    """Item values as text (``str()`` of each), missing values kept missing."""
    values = column.to_numpy(dtype=object)
    return pd.Series([None if pd.isna(v) else str(v) for v in values], dtype=object)
