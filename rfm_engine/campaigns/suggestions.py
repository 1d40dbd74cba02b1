"""Cross-sell and up-sell suggestions, computed in DuckDB from what similar customers bought.

Similar customers are the customers of the same segment. No line reaches pandas, and the
work follows the customers asked for (``targets``: in the weekly run, the customers of the
resurrection campaigns), not the size of the history:

* **the scope**: only the customers of the segments that hold a target can change a target's
  suggestion (the rankings count the customers of the target's own segment), so one pass
  over the lines sums customer x item for them alone (:func:`suggest_items` shares that
  pass between cross-sell and up-sell);
* **prices** (up-sell) are averages over *all* buyers of a product: two cheap passes sum
  each product's amounts and units over every line and find the (customer, product) pairs
  that hold a return or zero line, the only ones whose net can fail the "bought" rule; the
  scope's pass sums those pairs too, and the ones not bought are taken off their product's
  totals. For loaded transactions the amounts are exact decimals, so this equals summing
  the bought pairs directly;
* **up-sell without pairs**: in a segment and category, the products ranked by buyers (then
  name) form a sequence; the first one priced above a target's usual price is the first
  "record" of the running maximum price above it, which an ASOF join finds per target. Only
  the targets who already own that product are paired with the rest of the ranking.

Each function takes the lines either as a DataFrame (validated like every other input) or
as loaded :class:`~rfm_engine.io.loading.Transactions` (read straight from their DuckDB
view, amounts summed exactly as decimals; a DataFrame's amounts are summed as floats).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, InputError
from ..io._validation import (
    id_array,
    id_column,
    id_strings,
    is_int,
    numeric_column,
    require_columns,
)
from ..io.loading import Transactions, connect
from .exports import LIST_SEPARATOR

__all__ = ["suggest_items", "suggest_products", "suggest_upsell"]

_NAMES = itertools.count()


def suggest_items(
    transactions: pd.DataFrame | Transactions,
    customers: pd.DataFrame,
    *,
    targets: Sequence[Any] | None = None,
    k: int = 3,
) -> pd.DataFrame:
    """Cross-sell and up-sell together, from one pass over the lines for both.

    What the weekly run attaches to its resurrection targets: ``cross_sell`` by
    ``category`` when the lines have one, else by ``product_id`` (see
    :func:`suggest_products`), and ``upsell`` when they have both (see
    :func:`suggest_upsell`). The results equal those two functions'.

    Parameters
    ----------
    transactions : DataFrame or Transactions
        ``customer_id``, ``amount`` and ``category`` and/or ``product_id``.
    customers : DataFrame
        ``customer_id`` and ``segment``.
    targets : sequence, optional
        Customer ids to suggest for (default: every customer).
    k : int, default=3
        At most this many cross-sell suggestions per customer.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` in the order of ``customers``, with the columns that the
        lines allow (``cross_sell``, ``upsell``; none without a category or product).

    Examples
    --------
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "b", "b", "c", "c", "d"],
    ...     "category": ["tea", "tea", "tea", "tea", "cake", "tea"],
    ...     "product_id": ["green", "green", "gold", "gold", "c1", "white"],
    ...     "amount": [4.0, 4.0, 12.0, 12.0, 3.0, 9.0]})
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "segment": "loyal"})
    >>> suggest_items(tx, customers, targets=["a", "d"])  # doctest: +NORMALIZE_WHITESPACE
                cross_sell upsell
    customer_id
    a                 cake   gold
    b                  NaN    NaN
    c                  NaN    NaN
    d                 cake   gold
    """
    _check_k(k, "suggest_items")
    available = (transactions.columns if isinstance(transactions, Transactions)
                 else transactions.columns)
    mapped = [c for c in ("category", "product_id") if c in available]
    if len(mapped) == 2:
        keys = {"cat": "category", "item": "product_id"}
    else:
        keys = {"item": mapped[0]} if mapped else {}
    if not keys:
        index = _Inputs.customer_index(customers)
        return pd.DataFrame(index=index)
    with _Inputs(transactions, customers, keys, targets, prices=len(keys) == 2) as inputs:
        columns = {"cross_sell": inputs.series(
            _cross_sell(inputs, "cat" if "cat" in keys else "item", k), "cross_sell")}
        if len(keys) == 2:
            columns["upsell"] = inputs.series(_upsell(inputs), "upsell")
        return pd.DataFrame(columns)


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
    _check_k(k, "suggest_products")
    with _Inputs(transactions, customers, {"item": by}, targets) as inputs:
        return inputs.series(_cross_sell(inputs, "item", k), "cross_sell")


def _check_k(k: int, where: str) -> None:
    if not is_int(k) or k < 1:
        raise ConfigError(f"The 'k' parameter of {where} must be an int >= 1. "
                          f"Got {k!r} instead.")


def _cross_sell(inputs: _Inputs, column: str, k: int) -> pa.Table:
    """``pos, suggestion`` of the targets: the first ``k`` unbought items of the ranking.

    DuckDB sorts the candidate (target, item) pairs by target and rank, and the first ``k``
    of each target are kept while the sorted pairs stream by (:func:`_first_k`): a sort
    spills to disk under the memory limit, where an aggregate holding every target's
    items (``arg_min(item, r, k)``, ``string_agg``) or a window partitioned by target does
    not (at 50M lines, the default 1 GB limit ran out of memory there).
    """
    pairs = inputs.con.sql(f"""
        WITH bought AS MATERIALIZED (
            SELECT pos, segment, wanted, {column} AS item FROM {inputs.detail}
            WHERE pos IS NOT NULL AND {column} IS NOT NULL
            GROUP BY pos, segment, wanted, {column} HAVING sum(amount) > 0
        ), ranking AS (
            SELECT segment, item,
                   row_number() OVER (PARTITION BY segment ORDER BY count(*) DESC, item) AS r
            FROM bought GROUP BY segment, item
        ), n_bought AS (
            SELECT pos, count(*) AS n FROM bought WHERE wanted GROUP BY pos
        ), wanted AS (
            SELECT pos, segment, coalesce(n, 0) AS n
            FROM {inputs.scope} LEFT JOIN n_bought USING (pos) WHERE wanted
        ), pairs AS (  -- the first k + n items of the ranking hold k unbought ones
            SELECT w.pos, r.item, r.r
            FROM wanted w JOIN ranking r ON r.segment = w.segment AND r.r <= {k} + w.n
            ANTI JOIN bought b ON b.pos = w.pos AND b.item = r.item
        )
        SELECT pos, item FROM pairs ORDER BY pos, r
    """)
    return _first_k(pairs.to_arrow_reader(_BATCH_ROWS), k)


#: Rows of sorted pairs held in Python at a time by :func:`_first_k`.
_BATCH_ROWS = 1 << 20


def _first_k(batches: Any, k: int) -> pa.Table:
    """Join the first ``k`` items of each ``pos`` of batches sorted by ``pos`` with ``"|"``.

    ``batches`` yields record batches of ``pos, item``, sorted by ``pos`` (then by rank); a
    ``pos`` may continue from one batch into the next. Only the kept rows are held.
    """
    kept_pos: list[np.ndarray] = []
    kept_items: list[pa.Array] = []
    last, seen = None, 0  # the pos ending the previous batch and its rows so far
    for batch in batches:
        pos = batch.column(0).to_numpy()
        if not len(pos):
            continue
        index = np.arange(len(pos))
        new = np.empty(len(pos), dtype=bool)
        new[0] = pos[0] != last
        new[1:] = pos[1:] != pos[:-1]
        rank = index - np.maximum.accumulate(np.where(new, index, 0))
        if not new[0]:  # the rows continuing the previous batch's pos
            head = np.flatnonzero(new)
            rank[:head[0] if len(head) else len(pos)] += seen
        keep = rank < k
        kept_pos.append(pos[keep])
        kept_items.append(batch.column(1).filter(pa.array(keep)))
        last, seen = pos[-1], int(rank[-1]) + 1
    pos = np.concatenate(kept_pos) if kept_pos else np.empty(0, dtype=np.int64)
    items = (pa.concat_arrays(kept_items) if kept_items else pa.array([], type=pa.string()))
    starts = np.flatnonzero(np.diff(pos, prepend=pos[:1] - 1)) if len(pos) else pos
    offsets = pa.array(np.append(starts, len(pos)).astype(np.int32))
    return pa.table({"pos": pos[starts],
                     "suggestion": pc.binary_join(pa.ListArray.from_arrays(offsets, items),
                                                  LIST_SEPARATOR)})


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
                 targets, prices=True) as inputs:
        return inputs.series(_upsell(inputs), "upsell")


def _upsell(inputs: _Inputs) -> pa.Table:
    """``pos, suggestion`` of the targets: the most bought pricier product they lack."""
    return inputs.query(f"""
        WITH lines AS MATERIALIZED (  -- the (customer, product) pairs bought, in scope
            SELECT pos, segment, wanted, cat, item, amount, units FROM {inputs.detail}
            WHERE pos IS NOT NULL AND cat IS NOT NULL AND item IS NOT NULL
              AND amount > 0 AND units > 0
        ), wanted AS MATERIALIZED (  -- each target's main category and usual unit price
            SELECT pos, segment, arg_min(cat, (-amount, cat)) AS cat,
                   arg_min(amount / units, (-amount, cat)) AS usual
            FROM (SELECT pos, segment, cat, sum(amount) AS amount, sum(units) AS units
                  FROM lines WHERE wanted GROUP BY pos, segment, cat)
            GROUP BY pos, segment
        ), shelves AS (
            SELECT DISTINCT segment, cat FROM wanted
        ), ranked AS MATERIALIZED (  -- per segment and category: products by buyers, then name
            SELECT *, row_number() OVER (PARTITION BY segment, cat ORDER BY n DESC, item) AS r
            FROM (SELECT l.segment, l.cat, l.item, count(*) AS n, any_value(p.price) AS price
                  FROM lines l JOIN {inputs.prices} p ON p.cat = l.cat AND p.item = l.item
                  SEMI JOIN shelves h ON h.segment = l.segment AND h.cat = l.cat
                  GROUP BY l.segment, l.cat, l.item)
        ), records AS (  -- products pricier than every better-ranked one
            SELECT segment, cat, item, r, price
            FROM (SELECT *, max(price) OVER (PARTITION BY segment, cat ORDER BY r
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                            AS before
                  FROM ranked)
            WHERE before IS NULL OR price > before
        ), first AS MATERIALIZED (  -- the best-ranked product priced above the usual price
            SELECT w.pos, w.segment, w.cat, w.usual, c.item, c.r
            FROM wanted w ASOF JOIN records c
              ON c.segment = w.segment AND c.cat = w.cat AND c.price > w.usual
        ), owned AS MATERIALIZED (  -- ... which the target already has: look further down
            SELECT f.* FROM first f SEMI JOIN lines o ON o.pos = f.pos AND o.item = f.item
        ), further AS (
            SELECT f.pos, p.item, p.r
            FROM owned f JOIN ranked p ON p.segment = f.segment AND p.cat = f.cat
                                      AND p.r > f.r AND p.price > f.usual
            ANTI JOIN lines o ON o.pos = f.pos AND o.item = p.item
        )
        SELECT pos, item AS suggestion FROM first ANTI JOIN owned USING (pos)
        UNION ALL
        SELECT pos, arg_min(item, r) AS suggestion FROM further GROUP BY pos
    """)


class _Inputs:
    """The customers in scope, their item totals and the product prices, in DuckDB.

    ``scope``: ``pos`` (row of ``customers``), ``cid``, ``segment``, ``wanted`` (a target)
    for the customers of the segments holding a target. ``detail``: the lines summed per
    customer and item (the item columns as text, ``amount``, ``units``), for the scope (with
    its ``pos``, ``segment`` and ``wanted``: the queries join on the integer ``pos``) and,
    with ``prices``, for the pairs holding a return or zero line (``doubtful``; ``pos`` NULL
    outside the scope). ``prices``: ``cat, item, price``, the average unit price of each
    product over its buyers. A DataFrame is validated and registered on a connection of its
    own; loaded transactions are read from their view, on their connection. Everything is
    dropped on exit.
    """

    def __init__(self, transactions: pd.DataFrame | Transactions, customers: pd.DataFrame,
                 items: dict[str, str], targets: Sequence[Any] | None, *,
                 prices: bool = False) -> None:
        self.index = self.customer_index(customers)
        cids = pa.array(self.index.array, type=pa.string())  # Arrow text: no copy
        segment = customers["segment"]
        has_segment = segment.notna().to_numpy(dtype=bool)
        wanted = (np.ones(len(cids), dtype=bool) if targets is None else pc.is_in(
            cids, value_set=pa.array(_target_ids(targets), type=pa.string()))
            .to_numpy(zero_copy_only=False))
        rows = np.flatnonzero(has_segment)
        segs = pa.table({
            "pos": pa.array(rows, type=pa.int64()),
            "cid": cids.take(pa.array(rows)),
            "segment": pa.array(segment[has_segment].astype("str").array, type=pa.string()),
            "wanted": pa.array(wanted[rows]),
        })
        self._names: list[tuple[str, str]] = []
        self._tag = f"{next(_NAMES)}_{id(self):x}"
        if isinstance(transactions, Transactions):
            require_columns(pd.DataFrame(columns=list(transactions.columns)),
                            list(items.values()), "transactions")
            self.con, self._own = transactions.con, False
            select = ", ".join(f"CAST({col} AS VARCHAR) AS {name}" for name, col in items.items())
            lines = self._create("VIEW", "lines", f"SELECT customer_id AS cid, {select}, amount, "
                                                  "1 AS units FROM transactions")
        else:
            self.con, self._own = connect(), True
            lines = self._register("lines", _lines_frame(transactions, items,
                                                         units=prices))
        segs_name = self._register("customers", segs)
        self.scope = self._create("TABLE", "scope", f"""
            SELECT * FROM {segs_name}
            WHERE segment IN (SELECT segment FROM {segs_name} WHERE wanted)""")
        keys = ", ".join(f"l.{name}" for name in items)
        scoped = ("any_value(s.pos) AS pos, any_value(s.segment) AS segment, "
                  "any_value(s.wanted) AS wanted")
        if not prices:
            self.detail = self._create("TABLE", "detail", f"""
                SELECT {scoped}, {keys}, sum(l.amount) AS amount
                FROM {lines} l JOIN {self.scope} s ON s.cid = l.cid
                GROUP BY l.cid, {keys}""")
            return
        # every line, per product; the pairs holding a return or zero line (see the module docs)
        whole = self._create("TABLE", "whole", f"""
            SELECT cat, item, sum(amount) AS amount, sum(units) AS units
            FROM {lines} WHERE cat IS NOT NULL AND item IS NOT NULL GROUP BY cat, item""")
        doubtful = self._create("TABLE", "doubtful", f"""
            SELECT DISTINCT cid, cat, item FROM {lines}
            WHERE cat IS NOT NULL AND item IS NOT NULL AND (amount <= 0 OR units <= 0)""")
        self.detail = self._create("TABLE", "detail", f"""
            SELECT {scoped}, {keys}, sum(l.amount) AS amount, sum(l.units) AS units,
                   bool_or(x.cid IS NOT NULL) AS doubtful
            FROM {lines} l
            LEFT JOIN {self.scope} s ON s.cid = l.cid
            LEFT JOIN {doubtful} x ON x.cid = l.cid AND x.cat = l.cat AND x.item = l.item
            WHERE s.cid IS NOT NULL OR x.cid IS NOT NULL
            GROUP BY l.cid, {keys}""")
        self.prices = self._create("TABLE", "prices", f"""
            WITH unbought AS (
                SELECT cat, item, sum(amount) AS amount, sum(units) AS units
                FROM {self.detail} WHERE doubtful AND NOT (amount > 0 AND units > 0)
                GROUP BY cat, item
            )
            SELECT w.cat, w.item, (w.amount - coalesce(u.amount, 0))
                                  / (w.units - coalesce(u.units, 0)) AS price
            FROM {whole} w LEFT JOIN unbought u ON u.cat = w.cat AND u.item = w.item
            WHERE w.units - coalesce(u.units, 0) > 0""")

    @staticmethod
    def customer_index(customers: pd.DataFrame) -> pd.Index:
        """Return the customers' ids as text, checked: the index of every result."""
        require_columns(customers, ["customer_id", "segment"], "customers")
        ids = id_column(customers["customer_id"], "customers")
        index = pd.Index(ids.array, dtype="str", name="customer_id")
        if not index.is_unique:
            repeated = index[index.duplicated()].unique()[:3].tolist()
            raise InputError(f"customers: customer_id must be unique, got repeated id(s) "
                             f"{repeated}.")
        return index

    def _register(self, what: str, data: Any) -> str:
        name = f"_rfm_suggest_{what}_{self._tag}"
        self.con.register(name, data)
        self._names.append(("registered", name))
        return name

    def _create(self, kind: str, what: str, sql: str) -> str:
        name = f"_rfm_suggest_{what}_{self._tag}"
        self.con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {sql}")
        self._names.append((kind, name))
        return name

    def query(self, sql: str) -> pa.Table:
        """Run ``sql`` and return its result as an Arrow table."""
        return self.con.sql(sql).to_arrow_table()

    def series(self, found: pa.Table, name: str) -> pd.Series:
        """Suggestions ``found`` (``pos, suggestion``) in the order of the customers."""
        values = np.full(len(self.index), None, dtype=object)
        values[found["pos"].to_numpy()] = found["suggestion"].to_numpy(zero_copy_only=False)
        return pd.Series(values, index=self.index.copy(), dtype="str", name=name)

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own:
            self.con.close()
            return
        for kind, name in reversed(self._names):
            if kind == "registered":
                self.con.unregister(name)
            else:
                self.con.execute(f"DROP {kind} IF EXISTS {name}")


def _target_ids(targets: Sequence[Any]) -> list[str]:
    """Return the target ids as text (a missing id is an error, as in the customers)."""
    values = targets.to_numpy(dtype=object) if isinstance(targets, pd.Series) else list(targets)
    return id_strings(list(values), source="targets")


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
