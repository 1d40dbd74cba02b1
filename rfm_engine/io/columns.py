"""The transaction data contract: canonical column names and how source columns map to them."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError, MissingColumnsError

__all__ = ["CANONICAL_COLUMNS", "CONTACT_COLUMNS", "ColumnMap", "parse_column_spec"]

#: Every column the engine understands, with what it holds.
CANONICAL_COLUMNS: dict[str, str] = {
    "customer_id": "customer identifier (text; leading zeros kept)",
    "order_date": "ISO 8601 date or timestamp of the order",
    "amount": "net value of the line or order (negative for returns)",
    "quantity": "units on the line (amount = quantity x unit_price when amount is absent)",
    "unit_price": "price per unit",
    "order_id": "order or invoice number (without it: one order per customer per day)",
    "email": "contact email",
    "first_name": "contact first name",
    "country": "country",
    "channel": "sales channel",
    "product_id": "product or SKU",
    "category": "product category",
}
#: Columns carried per customer as "latest known value".
CONTACT_COLUMNS = ("email", "first_name", "country")
_OPTIONAL_PASSTHROUGH = ("country", "channel", "product_id", "category")


def parse_column_spec(spec: str) -> dict[str, str]:
    """Parse a ``--columns`` option into a ``{canonical: source}`` mapping.

    Parameters
    ----------
    spec : str
        Comma-separated ``canonical=Source Column`` pairs.

    Returns
    -------
    dict
        Canonical name to source column name.

    Examples
    --------
    >>> parse_column_spec("customer_id=Customer ID, order_date=InvoiceDate")
    {'customer_id': 'Customer ID', 'order_date': 'InvoiceDate'}
    """
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"--columns: {part!r} is not of the form canonical=Source Column "
                "(e.g. 'customer_id=Customer ID')."
            )
        mapping[key.strip()] = value.strip()
    return mapping


class ColumnMap:
    """Map source column names to the engine's canonical names.

    Canonical columns not mentioned map to a source column of the same name when
    the source has one, so files that already use the canonical names need no
    mapping.

    Parameters
    ----------
    mapping : Mapping[str, str], optional
        ``{canonical: source}``.

    Examples
    --------
    >>> cm = ColumnMap({"customer_id": "Customer ID"})
    >>> cm.resolve(["Customer ID", "order_date", "amount", "Note"], source="tx.csv")
    {'customer_id': 'Customer ID', 'order_date': 'order_date', 'amount': 'amount'}
    """

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        mapping = dict(mapping or {})
        unknown = sorted(set(mapping) - set(CANONICAL_COLUMNS))
        if unknown:
            raise ConfigError(
                f"Unknown canonical column(s) {', '.join(map(repr, unknown))} in the column "
                f"mapping; allowed: {', '.join(CANONICAL_COLUMNS)}."
            )
        self.mapping = mapping

    def resolve(self, available: list[str], *, source: str) -> dict[str, str]:
        """Return ``{canonical: source column}`` for the columns present in ``available``.

        Raises
        ------
        MissingColumnsError
            When a required column (or an explicitly mapped one) is missing.
        """
        present = set(available)

        def name(canonical: str) -> str:
            return self.mapping.get(canonical, canonical)

        resolved = {c: name(c) for c in CANONICAL_COLUMNS if name(c) in present}
        needed = ["customer_id", "order_date", *self.mapping]
        if "amount" not in resolved:
            line_items = {"quantity", "unit_price"} & (set(self.mapping) | set(resolved))
            needed += ["quantity", "unit_price"] if line_items else ["amount"]
        missing = list(dict.fromkeys(name(c) for c in needed if c not in resolved))
        if missing:
            raise MissingColumnsError(source, missing, list(available))
        if "amount" in resolved:
            resolved.pop("quantity", None)
            resolved.pop("unit_price", None)
        return resolved
