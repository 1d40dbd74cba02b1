"""The data-quality report: what each cleaning rule did to the input."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .writers import json_text, write_text_atomic

__all__ = ["CLEANING_RULES", "DataQualityReport"]

#: The cleaning rules, in the order they are applied, with what each one does.
CLEANING_RULES: dict[str, str] = {
    "bad_value": "row with an unparseable date or amount dropped (only with on_bad_rows='drop')",
    "before_min_date": "row dated before the plausibility floor min_date dropped (only with "
                       "on_bad_rows='drop')",
    "missing_customer_id": "row without customer id dropped",
    "duplicate_line": "with an order id: line identical in every column to an earlier one dropped",
    "after_as_of": "row dated after the as-of date excluded",
    "before_window": "row dated before the window excluded (window_days)",
}


@dataclass
class DataQualityReport:
    """Counts of every cleaning rule applied while loading transactions.

    Attributes
    ----------
    source : str
        The input (file, folder or table).
    rows_read : int
        Data rows in the input.
    dropped : dict
        Rows removed per rule of :data:`CLEANING_RULES` (applied in that order; a row
        counts under the first rule that removes it).
    bad_values : dict
        Malformed values per source column (dropped only with ``on_bad_rows='drop'``).
    return_lines : int
        Kept lines with a negative amount (returns, cancellations): they count in
        monetary, net.
    shared_order_ids : int
        Order ids used by more than one customer (with an order id): each customer's
        lines count as their own order.
    non_positive_orders : int
        Orders whose net amount is zero or below: kept in monetary, not counted in
        frequency.
    customers_without_purchase : int
        Customers whose orders all net to zero or below (only returns in the window):
        left out of the customer table.
    rows_kept : int
        Rows that reach the features.
    customers : int
        Customers in the customer table.
    as_of : str
        Inclusive observation end (ISO date).
    first_date, last_date : str
        Date range of the kept rows.
    warnings : list of str
        Things worth a look that did not stop the run.
    """

    source: str
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLEANING_RULES, 0))
    bad_values: dict[str, int] = field(default_factory=dict)
    return_lines: int = 0
    shared_order_ids: int = 0
    non_positive_orders: int = 0
    customers_without_purchase: int = 0
    rows_kept: int = 0
    customers: int = 0
    as_of: str | None = None
    window_start: str | None = None
    first_date: str | None = None
    last_date: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        """Rows removed as dirt (bad values, missing ids, duplicates), not by the window."""
        return sum(self.dropped.get(k, 0) for k in ("bad_value", "before_min_date",
                                                    "missing_customer_id", "duplicate_line"))

    def to_dict(self) -> dict:
        """Return the report as a JSON-ready dict."""
        out = asdict(self)
        out["rows_dropped"] = self.rows_dropped
        return out

    def to_json(self) -> str:
        """Return the report as indented JSON text."""
        return json_text(self.to_dict())

    def write_json(self, path: str | Path) -> Path:
        """Write the report as JSON, atomically; return the path."""
        return write_text_atomic(path, self.to_json())

    def __str__(self) -> str:
        lines = [
            f"data quality: {self.source}",
            f"  rows read                  {self.rows_read:>12,}",
        ]
        for rule, count in self.dropped.items():
            lines.append(f"  - {rule:<24} {count:>12,}")
        lines += [
            f"  rows kept                  {self.rows_kept:>12,}",
            f"  return/cancel lines (kept) {self.return_lines:>12,}",
            f"  order ids of 2+ customers  {self.shared_order_ids:>12,}",
            f"  orders net <= 0 (no freq.) {self.non_positive_orders:>12,}",
            f"  customers w/o purchase     {self.customers_without_purchase:>12,}",
            f"  customers                  {self.customers:>12,}",
            f"  as of {self.as_of}; kept dates {self.first_date} .. {self.last_date}",
        ]
        for column, count in self.bad_values.items():
            lines.append(f"  bad values in {column!r}: {count:,}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)
