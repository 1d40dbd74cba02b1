"""Deterministic sample data: a realistic, optionally dirty retail transaction history.

The demo, the tests and the benchmarks need transactions that look like a real shop's export
without shipping one. :func:`generate_transactions` simulates customers and their orders and
returns them in the layout of the UCI *Online Retail II* export (one row per invoice line),
plus a few CRM columns (email, first name, product category, channel).

How the history is simulated
----------------------------
- **Acquisition**: customers arrive over the whole period, more in busy weeks (the seasonal
  curve below) and slightly more as the shop grows; customer ids are numbered in order of
  arrival, from 12346 as in Online Retail.
- **Purchases**: a Pareto/NBD process. Each customer buys at a gamma-distributed rate (per day,
  shape 0.65, rate 55) and stays active for an exponential lifetime whose dropout rate is
  gamma-distributed too (shape 0.7, rate 140). Purchases follow the seasonal curve. About half
  the customers never buy again after their first order; a loyal core buys many times;
  many lapse.
- **Seasonality**: a month factor (November and December peak, a January and summer lull), a
  weekday factor (Saturday busiest), Black Friday and Cyber Monday spikes, a quiet Christmas Day;
  the time of day depends on the channel (stores open 9:00-20:00, web and app peak in the
  evening).
- **Baskets**: 1 + Poisson lines per order (per-customer mean, lognormal); each line picks a
  category from the customer's own category preferences (Dirichlet around the shop's category
  mix, so cross-sell analyses find structure), then a product by popularity within it. A line
  never repeats a product of the same order, so clean data holds no duplicate lines.
- **Spend**: lognormal product prices per category (rounded to 5 pence; 20% off on 5% of lines,
  and on 30% during the Black Friday week and the post-Christmas sale); lognormal quantities
  per customer, with 3% trade buyers ordering by the dozen, so spend is heavy-tailed (the top
  fifth of customers bring about 70% of revenue).
- **Catalogue**: 200 products in 8 categories; the catalogue is the same for every seed.
- **Customers**: a country (United Kingdom about 82%), a preferred channel (web, app, store; 80%
  of a customer's orders use it), a first name and an email at the reserved ``example.com``,
  ``example.org`` and ``example.net`` domains (RFC 2606), so no real mailbox can ever be
  addressed. Emails are unique per customer.

The dirt (``dirty=True``)
-------------------------
Each kind of dirt is drawn independently with the target rate in :data:`DIRT_RATES`; the
realized shares vary a little with the seed (about +-10% of the rate at 5,000 customers).

- ``returns``, ~2% of lines: lines on ``C`` invoices with negative Quantity, each returning all
  (60%) or part of a line the same customer bought earlier, at the same price; 30% are
  same-day cancellations, the rest come back within weeks.
- ``missing_customer_id``, 3% of invoices (so ~3% of lines): guest checkouts, with empty
  Customer ID, Email and First Name. About 1.5% of customers then appear only as guests.
- ``duplicate_lines``, 0.5% of lines: a line repeated right after itself, identical in every
  column.
- ``float_customer_id``, 2% of lines: Customer ID written as a spreadsheet float
  (``"17850.0"``).
- ``spaced_customer_id``, 0.3% of lines: Customer ID with surrounding spaces (``" 17850 "``).
- ``email_missing``, 5% of customers: no email.
- ``email_uppercase``, 4% of customers: email in upper case or capitalized.
- ``email_spaces``, 2% of customers: email with leading or trailing spaces.
- ``email_invalid``, 1% of customers: not an address (no ``@``, two ``@``, no domain, or a
  space inside).
- ``first_name_missing``, 5% of customers: no first name.

With ``dirty=False`` none of these occur: every line has a clean Customer ID, a valid lower-case
email and a first name, there are no returns and no duplicate lines. Future dates and malformed
values (unparseable dates or amounts) are never generated; tests inject those themselves.

Determinism: the same arguments give the same frame and byte-identical CSV files, on any
machine with the same numpy major version (numpy's ``default_rng`` streams).
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ..errors import ConfigError
from ..io._validation import is_int, is_real, require_columns

__all__ = [
    "COLUMNS",
    "CRM_INPUT_KINDS",
    "DIRT_RATES",
    "SUPPRESSION_COLUMNS",
    "generate_consent",
    "generate_crm_inputs",
    "generate_suppression",
    "generate_transactions",
    "write_consent",
    "write_crm_inputs",
    "write_sample",
    "write_sample_data",
]

#: Columns of :func:`generate_transactions`, in order (Online Retail II plus CRM fields).
COLUMNS: tuple[str, ...] = (
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
    "Email",
    "First Name",
    "Category",
    "Channel",
)

#: Columns of :func:`generate_suppression`, in order.
SUPPRESSION_COLUMNS: tuple[str, ...] = ("email", "customer_id", "reason")

#: Target rate of each kind of dirt when ``dirty=True`` (see the module docs for the unit).
DIRT_RATES: dict[str, float] = {
    "returns": 0.02,
    "missing_customer_id": 0.03,
    "duplicate_lines": 0.005,
    "float_customer_id": 0.02,
    "spaced_customer_id": 0.003,
    "email_missing": 0.05,
    "email_uppercase": 0.04,
    "email_spaces": 0.02,
    "email_invalid": 0.01,
    "first_name_missing": 0.05,
}

# --- purchase process (Pareto/NBD, time unit: days) -------------------------------------------
_RATE_SHAPE, _RATE_RATE = 0.65, 55.0  # purchase rate lambda ~ Gamma(r, alpha)
_DROP_SHAPE, _DROP_RATE = 0.7, 140.0  # dropout rate mu ~ Gamma(s, beta)
_GROWTH = 0.3  # acquisitions grow by 30% over the period
_FIRST_INVOICE = 489434  # Online Retail II's first invoice number
_FIRST_CUSTOMER = 12346  # Online Retail II's first customer id
_MAX_LINES = 40
_MAX_QUANTITY = 480

# Share of purchase orders that get a return, and of their other lines returned with the first;
# tuned so that returned lines are about DIRT_RATES["returns"] of all lines.
_RETURN_ORDER_RATE = 0.036
_RETURN_EXTRA_LINE = 0.35

# --- seasonality --------------------------------------------------------------------------------
_MONTH_FACTOR = np.array([0.80, 0.78, 0.88, 0.90, 0.92, 0.88, 0.86, 0.88, 1.00, 1.10, 1.55, 1.65])
_WEEKDAY_FACTOR = np.array([0.95, 0.92, 0.95, 1.00, 1.05, 1.18, 0.95])  # Monday first

# --- customers ------------------------------------------------------------------------------------
_CHANNELS = ("web", "app", "store")
_CHANNEL_SHARE = np.array([0.55, 0.25, 0.20])
_CHANNEL_LOYALTY = 0.8
_HOUR_WEIGHTS = np.array(
    [
        # web: all day, evening peak
        [1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.2, 2.8, 3, 3.2]
        + [3.5, 3.2, 3, 3, 3.2, 3.5, 4, 4.6, 5, 4.6, 3.5, 2],
        # app: commute, lunch and late evening
        [1.2, 0.8, 0.5, 0.3, 0.3, 0.5, 1.2, 2.8, 3.2, 2.5, 2.4, 2.6]
        + [3.6, 3, 2.6, 2.6, 2.8, 3.4, 3.8, 4.2, 4.8, 5, 4.2, 2.6],
        # store: opening hours 9:00-20:00
        [0] * 9 + [2, 3, 4, 5, 4.5, 4, 4, 4.2, 4.5, 4, 3] + [0] * 4,
    ],
    dtype=float,
)
_COUNTRIES = (
    ("United Kingdom", 0.82),
    ("Germany", 0.03),
    ("France", 0.028),
    ("EIRE", 0.022),
    ("Netherlands", 0.015),
    ("Spain", 0.012),
    ("Belgium", 0.01),
    ("Switzerland", 0.008),
    ("Portugal", 0.007),
    ("Australia", 0.006),
    ("Norway", 0.006),
    ("Italy", 0.006),
    ("Sweden", 0.005),
    ("Denmark", 0.005),
    ("Channel Islands", 0.005),
    ("USA", 0.005),
    ("Poland", 0.004),
    ("Finland", 0.002),
)
_FIRST_NAMES = (
    "Oliver", "Olivia", "George", "Amelia", "Harry", "Isla", "Jack", "Ava", "Noah", "Emily",
    "Charlie", "Sophia", "Jacob", "Grace", "Thomas", "Lily", "Oscar", "Mia", "William", "Freya",
    "James", "Ella", "Leo", "Chloe", "Alfie", "Evie", "Henry", "Poppy", "Arthur", "Ruby",
    "Daniel", "Jessica", "Samuel", "Sophie", "Joseph", "Hannah", "Lucas", "Lucy", "Ethan",
    "Charlotte", "Mohammed", "Aisha", "Luca", "Anna", "Sebastian", "Zara", "Liam", "Maya",
    "Adam", "Eleanor", "Max", "Alice", "David", "Sarah", "Michael", "Laura", "Peter", "Helen",
    "Paul", "Claire",
)  # fmt: skip
_LAST_NAMES = (
    "smith", "jones", "williams", "taylor", "brown", "davies", "evans", "wilson", "thomas",
    "johnson", "roberts", "robinson", "thompson", "wright", "walker", "white", "edwards",
    "hughes", "green", "hall", "lewis", "harris", "clarke", "patel", "jackson", "wood", "turner",
    "martin", "cooper", "hill", "ward", "morris", "moore", "clark", "lee", "king", "baker",
    "harrison", "morgan", "allen",
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_EMAIL_DOMAIN_SHARE = np.array([0.45, 0.25, 0.2, 0.1])

# --- catalogue: name -> (median unit price, size, share of demand, product nouns) --------------
_CATEGORIES: dict[str, tuple[float, int, float, tuple[str, ...]]] = {
    "Home Decor": (4.95, 32, 0.20, ("T-LIGHT HOLDER", "PHOTO FRAME", "WALL CLOCK",
                                    "HANGING ORNAMENT", "DOORSTOP", "MIRROR", "VASE")),
    "Kitchen": (3.75, 30, 0.16, ("CAKE STAND", "MUG", "LUNCH BOX", "BAKING SET", "JAM JAR",
                                 "STORAGE TIN", "CAKE CASES")),
    "Stationery": (1.65, 28, 0.14, ("NOTEBOOK", "GREETING CARD", "WRAPPING PAPER",
                                    "PENCIL SET", "STICKER SHEET", "GIFT TAG", "MEMO BOARD")),
    "Gifts": (3.25, 26, 0.12, ("GIFT BAG", "KEYRING", "TRINKET BOX", "PURSE",
                               "SCENTED CANDLE", "PHOTO ALBUM")),
    "Toys": (2.95, 24, 0.12, ("SKIPPING ROPE", "JIGSAW PUZZLE", "SOFT TOY", "DRAWING SLATE",
                              "PLAYING CARDS", "DOLLS HOUSE", "SPINNING TOP")),
    "Textiles": (4.25, 22, 0.10, ("CUSHION COVER", "TEA TOWEL", "APRON", "TOTE BAG", "THROW",
                                  "OVEN GLOVE")),
    "Garden": (5.95, 20, 0.08, ("PLANT POT", "WATERING CAN", "BIRD FEEDER", "GARDEN KNEELER",
                                "SEED TIN", "GARDEN SIGN")),
    "Lighting": (6.50, 18, 0.08, ("LANTERN", "FAIRY LIGHTS", "TABLE LAMP", "NIGHT LIGHT",
                                  "STRING LIGHTS", "CANDLE HOLDER")),
}  # fmt: skip
_STYLES = (
    "WHITE", "RED RETROSPOT", "VINTAGE", "PINK POLKADOT", "REGENCY", "JUMBO", "BLUE PAISLEY",
    "SKULLS", "WOODLAND", "SPACEBOY", "GREEN STRIPE", "CHRISTMAS",
)  # fmt: skip
_CATALOGUE_SEED = 20240101  # the catalogue is the same for every seed
_REASONS = ("unsubscribed", "bounced", "complained", "erased")
_REASON_SHARE = np.array([0.55, 0.2, 0.05, 0.2])
_VALID_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


@dataclass(frozen=True)
class _Catalogue:
    code: pa.Array  # StockCode per product
    description: pa.Array
    category: np.ndarray  # category index per product
    category_names: pa.Array
    cents: np.ndarray  # base unit price per product, in pence
    offset: np.ndarray  # first product of each category
    cum_popularity: list[np.ndarray]  # per category: cumulative popularity of its products
    mix: np.ndarray  # share of demand per category


@dataclass(frozen=True)
class _Customers:
    acquired: np.ndarray  # day of the first purchase
    rate: np.ndarray  # purchases per day while active
    lifetime: np.ndarray  # days active after the first purchase
    basket: np.ndarray  # mean extra lines per order
    quantity_mu: np.ndarray  # log-scale mean quantity per line
    cum_preference: np.ndarray  # (customers, categories) cumulative category preferences
    channel: np.ndarray  # preferred channel
    country: np.ndarray
    first_name: np.ndarray
    last_name: np.ndarray
    email_pattern: np.ndarray
    email_domain: np.ndarray


@dataclass(frozen=True)
class _Orders:
    """One entry per invoice; after :func:`_by_invoice`, entry ``i`` is invoice number ``i``."""

    customer: np.ndarray  # the buyer, also on guest invoices
    minute: np.ndarray  # minutes since the start day
    channel: np.ndarray
    is_return: np.ndarray
    guest: np.ndarray  # invoice without Customer ID, Email and First Name


@dataclass(frozen=True)
class _Lines:
    """One entry per invoice line, sorted by ``order``."""

    order: np.ndarray  # index into _Orders
    product: np.ndarray
    quantity: np.ndarray
    cents: np.ndarray  # unit price in pence
    id_style: np.ndarray  # 0 plain, 1 spreadsheet float, 2 surrounding spaces

    def take(self, index: np.ndarray) -> _Lines:
        return _Lines(*(getattr(self, f.name)[index] for f in fields(self)))


@dataclass(frozen=True)
class _Simulation:
    """Lines in output order with their invoices, plus per-customer text columns."""

    start: pd.Timestamp
    lines: _Lines
    orders: _Orders
    customer_id: pa.Array  # per customer, as are the next three
    country: pa.Array
    email: pa.Array
    first_name: pa.Array
    catalogue: _Catalogue

    def __len__(self) -> int:
        return len(self.lines.order)


def generate_transactions(
    n_customers: int = 5000,
    *,
    start: str | pd.Timestamp = "2024-01-01",
    end: str | pd.Timestamp = "2025-12-31",
    seed: int = 0,
    dirty: bool = True,
) -> pd.DataFrame:
    r"""Simulate a retail transaction history in the layout of the UCI Online Retail II export.

    One row per invoice line; one invoice is one order of one customer. The simulation
    (acquisition, Pareto/NBD purchases, seasonality, category preferences, heavy-tailed spend)
    and the dirt are described in the module docs, the dirt rates in :data:`DIRT_RATES`.

    Parameters
    ----------
    n_customers : int, default=5000
        Number of simulated customers; each makes at least one purchase. About 9.5 lines are
        generated per customer with the default two-year period.
    start, end : str or pandas.Timestamp, default="2024-01-01", "2025-12-31"
        First and last day of the history (both included).
    seed : int, default=0
        Seed of the random generator: the same arguments give the same frame.
    dirty : bool, default=True
        Add returns, guest lines without Customer ID, duplicate lines, badly written ids,
        emails and missing first names, at the rates of :data:`DIRT_RATES`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: ``Invoice`` (text, ``C`` prefix for returns), ``StockCode``,
        ``Description``, ``Quantity`` (int, negative on returns), ``InvoiceDate`` (ISO text,
        ``"2024-03-05 14:31:00"``), ``Price`` (float, unit price), ``Customer ID`` (text),
        ``Country``, ``Email``, ``First Name``, ``Category``, ``Channel`` (``web``, ``app`` or
        ``store``). Missing values are NaN. Rows are in invoice order, which is time order.

    Raises
    ------
    ConfigError
        If a parameter is out of range or a date cannot be parsed.

    See Also
    --------
    write_sample : Write the transactions and a suppression list to CSV files.

    Examples
    --------
    >>> from rfm_engine.datasets.sample_data import generate_transactions
    >>> df = generate_transactions(200, seed=1)
    >>> list(df.columns[:6])
    ['Invoice', 'StockCode', 'Description', 'Quantity', 'InvoiceDate', 'Price']
    >>> bool(df["InvoiceDate"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:00").all())
    True
    >>> returns = df[df["Invoice"].str.startswith("C")]
    >>> bool((returns["Quantity"] < 0).all())
    True
    >>> clean = generate_transactions(200, seed=1, dirty=False)
    >>> int(clean["Customer ID"].nunique())
    200
    """
    sim = _simulate(n_customers, start=start, end=end, seed=seed, dirty=dirty)
    return _table(sim, 0, len(sim), price_text=False).to_pandas()


def generate_suppression(
    transactions: pd.DataFrame, *, fraction: float = 0.03, seed: int = 0
) -> pd.DataFrame:
    """Draw a suppression list (unsubscribed, bounced, complained, erased) for a history.

    A ``fraction`` of the customers with a Customer ID in ``transactions`` is suppressed, plus
    one extra email-only row per ten for people who never bought (newsletter sign-ups). Each
    customer row holds the email only (35%, half of them in odd casing or with spaces, as
    typed into an ESP), the id only (25%, and always when the customer has no email), or both
    (40%). Invalid emails are suppressed as ``bounced``. Ids are matched after stripping
    spaces and a spreadsheet ``.0``, so the result depends only on each customer's id and email,
    not on row order or duplicates.

    Parameters
    ----------
    transactions : pandas.DataFrame
        Transactions with the ``Customer ID`` and ``Email`` columns of
        :func:`generate_transactions`. It is not modified.
    fraction : float, default=0.03
        Share of customers to suppress, in [0, 1].
    seed : int, default=0
        Seed of the random generator.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUPPRESSION_COLUMNS`: ``email`` and ``customer_id`` (text, NaN when
        absent) and ``reason`` (``unsubscribed``, ``bounced``, ``complained`` or ``erased``),
        in random order.

    Raises
    ------
    MissingColumnsError
        If ``Customer ID`` or ``Email`` is missing.
    ConfigError
        If ``fraction`` or ``seed`` is out of range.

    Examples
    --------
    >>> from rfm_engine.datasets.sample_data import generate_suppression, generate_transactions
    >>> tx = generate_transactions(1000, seed=2)
    >>> sup = generate_suppression(tx, fraction=0.05, seed=2)
    >>> list(sup.columns)
    ['email', 'customer_id', 'reason']
    >>> bool(sup["reason"].isin(["unsubscribed", "bounced", "complained", "erased"]).all())
    True
    >>> bool((sup["email"].notna() | sup["customer_id"].notna()).all())
    True
    """
    name = "generate_suppression"
    require_columns(transactions, ("Customer ID", "Email"), "transactions")
    if not is_real(fraction) or not 0.0 <= fraction <= 1.0:
        raise ConfigError(
            f"The 'fraction' parameter of {name} must be a float in [0, 1]. "
            f"Got {fraction!r} instead."
        )
    _check_seed(seed, name)

    ids = transactions["Customer ID"].astype("str").str.strip().str.replace(r"\.0$", "", regex=True)
    emails = transactions["Email"].astype("str").str.strip().str.lower()
    people = pd.DataFrame({"id": ids, "email": emails})
    people = people[ids.notna().to_numpy() & (ids != "").to_numpy()]
    people = people.groupby("id", sort=False)["email"].first().reset_index()
    people = (
        people.assign(length=people["id"].str.len())
        .sort_values(["length", "id"], kind="stable")
        .reset_index(drop=True)
    )

    rng = np.random.default_rng(seed)
    n_pick = round(fraction * len(people))
    picked = people.iloc[np.sort(rng.choice(len(people), n_pick, replace=False))]
    has_email = picked["email"].notna().to_numpy()
    kind = rng.choice(3, n_pick, p=[0.40, 0.35, 0.25])  # 0 both, 1 email only, 2 id only
    kind[~has_email] = 2
    reason = rng.choice(len(_REASONS), n_pick, p=_REASON_SHARE)
    valid = (picked["email"].str.fullmatch(_VALID_EMAIL) | ~has_email).to_numpy(dtype=bool)
    reason[~valid] = _REASONS.index("bounced")

    email = picked["email"].to_numpy(dtype=object).copy()
    odd = (kind == 1) & (rng.random(n_pick) < 0.5)
    style = rng.integers(0, 4, n_pick)
    for i in np.flatnonzero(odd):  # a few hundred rows at most: a loop is clearer here
        e = email[i]
        email[i] = (e.upper(), e.capitalize(), f"  {e}", f"{e} ")[style[i]]
    email[kind == 2] = None
    customer_id = picked["id"].to_numpy(dtype=object).copy()
    customer_id[kind == 1] = None

    n_extra = round(0.1 * n_pick)
    domains = rng.choice(len(_EMAIL_DOMAINS), n_extra, p=_EMAIL_DOMAIN_SHARE)
    extra = [f"newsletter.{i + 1}@{_EMAIL_DOMAINS[d]}" for i, d in enumerate(domains)]

    out = pd.DataFrame(
        {
            "email": pd.array([*email, *extra], dtype="str"),
            "customer_id": pd.array([*customer_id, *([None] * n_extra)], dtype="str"),
            "reason": pd.array(
                [_REASONS[r] for r in reason] + ["unsubscribed"] * n_extra, dtype="str"
            ),
        }
    )
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


def write_sample(
    path_dir: str | os.PathLike[str],
    n_customers: int = 5000,
    seed: int = 0,
    *,
    start: str | pd.Timestamp = "2024-01-01",
    end: str | pd.Timestamp = "2025-12-31",
    dirty: bool = True,
    chunk_rows: int = 1_000_000,
) -> dict[str, Path]:
    """Write a sample history and its suppression list as CSV files.

    Writes ``transactions.csv`` (:func:`generate_transactions`) and ``suppression.csv``
    (:func:`generate_suppression` of it, ``fraction=0.03``, same seed) into ``path_dir``,
    creating the folder if needed. Each file is written to a temporary file in the same
    folder and moved into place with :func:`os.replace`, so a reader never sees a partial
    file; existing files are replaced. Transactions are formatted and written
    ``chunk_rows`` lines at a time, so millions of customers fit in memory; the bytes do not
    depend on ``chunk_rows``. Prices are written with two decimals, missing values as empty
    cells, and nothing is quoted (no value holds a comma, quote or line break).

    Parameters
    ----------
    path_dir : str or os.PathLike
        Output folder.
    n_customers : int, default=5000
        Number of simulated customers (about 9.5 lines each).
    seed : int, default=0
        Seed: the same arguments give byte-identical files.
    start, end : str or pandas.Timestamp, default="2024-01-01", "2025-12-31"
        First and last day of the history (both included).
    dirty : bool, default=True
        Add the dirt of :data:`DIRT_RATES`.
    chunk_rows : int, default=1_000_000
        Lines formatted per write.

    Returns
    -------
    dict of str to pathlib.Path
        ``{"transactions": ..., "suppression": ...}``.

    Raises
    ------
    ConfigError
        If a parameter is out of range.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from rfm_engine.datasets.sample_data import write_sample
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write_sample(tmp, n_customers=100, seed=3)
    ...     tx = pd.read_csv(paths["transactions"], dtype={"Customer ID": "str"})
    ...     sorted(paths), tx.columns[0], paths["suppression"].name
    (['suppression', 'transactions'], 'Invoice', 'suppression.csv')
    """
    if not is_int(chunk_rows) or chunk_rows < 1:
        raise ConfigError(
            "The 'chunk_rows' parameter of write_sample must be an int >= 1. "
            f"Got {chunk_rows!r} instead."
        )
    sim = _simulate(n_customers, start=start, end=end, seed=seed, dirty=dirty)
    folder = Path(path_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"transactions": folder / "transactions.csv", "suppression": folder / "suppression.csv"}

    def write_transactions(f: IO[bytes]) -> None:
        f.write((",".join(COLUMNS) + "\n").encode())
        # No value holds a comma, quote or line break ("none" raises if one did).
        options = pcsv.WriteOptions(include_header=False, quoting_style="none")
        writer = None
        for lo in range(0, len(sim), chunk_rows):
            table = _table(sim, lo, min(lo + chunk_rows, len(sim)), price_text=True)
            if writer is None:
                writer = pcsv.CSVWriter(f, table.schema, write_options=options)
            writer.write_table(table)
        if writer is not None:
            writer.close()

    _atomic_write(paths["transactions"], write_transactions)

    # The suppression list depends only on each listed customer's id and email (see
    # generate_suppression), so a one-row-per-customer frame gives the same list as the full
    # transactions without building them in memory.
    listed = np.unique(sim.orders.customer[~sim.orders.guest])
    customers = pd.DataFrame(
        {
            "Customer ID": sim.customer_id.take(pa.array(listed)).to_pandas(),
            "Email": sim.email.take(pa.array(listed)).to_pandas(),
        }
    )
    suppression = generate_suppression(customers, fraction=0.03, seed=seed)
    from ..io.writers import write_csv

    text = io.StringIO()
    write_csv(suppression, text)
    _atomic_write(paths["suppression"], lambda f: f.write(text.getvalue().encode()))
    return paths


# --- helpers --------------------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``path`` through a temporary file in its folder and :func:`os.replace`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_seed(seed: object, name: str) -> None:
    if not is_int(seed) or seed < 0:
        raise ConfigError(
            f"The 'seed' parameter of {name} must be an int >= 0. Got {seed!r} instead."
        )


def _parse_day(value: object, param: str) -> pd.Timestamp:
    try:
        day = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"The '{param}' parameter of generate_transactions must be a date such as "
            f"'2024-01-01'. Got {value!r} instead."
        ) from exc
    if day is pd.NaT:
        raise ConfigError(
            f"The '{param}' parameter of generate_transactions must be a date such as "
            f"'2024-01-01'. Got {value!r} instead."
        )
    if day.tzinfo is not None:
        day = day.tz_localize(None)
    return day.normalize()


def _catalogue() -> _Catalogue:
    """Build the fixed 200-product catalogue (same for every seed)."""
    rng = np.random.default_rng(_CATALOGUE_SEED)
    sizes = np.array([size for _, size, _, _ in _CATEGORIES.values()])
    codes = rng.choice(np.arange(20000, 90000), sizes.sum(), replace=False)
    suffix = rng.choice(["", "", "", "", "A", "B", "C"], sizes.sum())
    descriptions, prices, categories, cum_popularity = [], [], [], []
    for c, (median, size, _, nouns) in enumerate(_CATEGORIES.values()):
        combos = [f"{style} {noun}" for noun in nouns for style in _STYLES]
        descriptions += [combos[i] for i in rng.choice(len(combos), size, replace=False)]
        base = median * rng.lognormal(0.0, 0.45, size)
        prices.append(np.maximum(np.rint(base * 20) * 5, 25))  # pence, rounded to 5p
        categories.append(np.full(size, c))
        popularity = 1.0 / np.arange(1, size + 1) ** 0.9  # Zipf-like within the category
        cum = np.cumsum(popularity) / popularity.sum()
        cum[-1] = 1.0
        cum_popularity.append(cum)
    mix = np.array([share for _, _, share, _ in _CATEGORIES.values()])
    return _Catalogue(
        code=pa.array([f"{code}{s}" for code, s in zip(codes, suffix, strict=True)]),
        description=pa.array(descriptions),
        category=np.concatenate(categories),
        category_names=pa.array(list(_CATEGORIES)),
        cents=np.concatenate(prices).astype(np.int32),
        offset=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
        cum_popularity=cum_popularity,
        mix=mix / mix.sum(),
    )


def _day_weights(days: pd.DatetimeIndex) -> np.ndarray:
    """Relative purchase intensity of each day (mean 1)."""
    month, day, weekday = days.month.to_numpy(), days.day.to_numpy(), days.day_of_week.to_numpy()
    w = _MONTH_FACTOR[month - 1] * _WEEKDAY_FACTOR[weekday]
    black_friday = (month == 11) & (weekday == 4) & (day >= 23) & (day <= 29)
    cyber_monday = np.zeros_like(black_friday)
    cyber_monday[3:] = black_friday[:-3]
    w = np.where(black_friday, w * 2.2, w)
    w = np.where(cyber_monday, w * 1.8, w)
    w = np.where((month == 12) & (day == 25), w * 0.15, w)
    w = np.where((month == 12) & (day == 26), w * 1.3, w)
    w = np.where((month == 1) & (day == 1), w * 0.5, w)
    return w / w.mean()


def _sale_days(days: pd.DatetimeIndex) -> np.ndarray:
    """Black Friday week and the post-Christmas sale (26 December to 15 January)."""
    month, day = days.month.to_numpy(), days.day.to_numpy()
    return (
        ((month == 11) & (day >= 23)) | ((month == 12) & (day >= 26)) | ((month == 1) & (day <= 15))
    )


def _pick_rows(cum: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw an index per entry of ``rows`` from that row of the cumulative weights ``cum``.

    Column by column, so no (len(rows), k) matrix is built.
    """
    out = np.zeros(len(rows), dtype=np.int64)
    for j in range(cum.shape[1] - 1):
        out += u > cum[rows, j]
    return out


def _hours(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    """Hour of day per order, from its channel's hour profile."""
    cum = np.cumsum(_HOUR_WEIGHTS, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(channel))
    hours = np.empty(len(channel), dtype=np.int64)
    for c in range(len(_CHANNELS)):
        mask = channel == c
        hours[mask] = np.searchsorted(cum[c], u[mask], side="right")
    return np.minimum(hours, 23)


def _simulate(
    n_customers: int,
    *,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    seed: int,
    dirty: bool,
) -> _Simulation:
    """Check the parameters and run the simulation; see the module docs for the model."""
    name = "generate_transactions"
    if not is_int(n_customers) or n_customers < 1:
        raise ConfigError(
            f"The 'n_customers' parameter of {name} must be an int >= 1. "
            f"Got {n_customers!r} instead."
        )
    _check_seed(seed, name)
    first, last = _parse_day(start, "start"), _parse_day(end, "end")
    if last < first:
        raise ConfigError(
            f"The 'end' parameter of {name} must not be before 'start' ({first.date()}). "
            f"Got {last.date()} instead."
        )
    # Two independent streams: the clean history does not depend on `dirty`.
    rng, dirt_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    catalogue = _catalogue()
    days = pd.date_range(first, last, freq="D")
    weight = _day_weights(days)

    customers = _customers(rng, int(n_customers), weight, catalogue)
    orders = _orders(rng, customers, weight)
    lines = _lines(rng, customers, orders, _sale_days(days), catalogue)
    if dirty:
        orders, lines = _returns(dirt_rng, orders, lines, len(days))
    orders, lines = _by_invoice(orders, lines)
    if dirty:
        orders, lines = _dirty_lines(dirt_rng, orders, lines)
    customer_id, country, email, first_name = _contacts(customers, dirt_rng if dirty else None)
    return _Simulation(
        start=first,
        lines=lines,
        orders=orders,
        customer_id=customer_id,
        country=country,
        email=email,
        first_name=first_name,
        catalogue=catalogue,
    )


def _customers(
    rng: np.random.Generator, n: int, weight: np.ndarray, catalogue: _Catalogue
) -> _Customers:
    """Draw the customers, numbered in order of arrival."""
    n_days = len(weight)
    p_acquired = weight * (1.0 + _GROWTH * np.arange(n_days) / max(n_days - 1, 1))
    trade = rng.random(n) < 0.03  # trade buyers order by the dozen
    country_share = np.array([share for _, share in _COUNTRIES])
    return _Customers(
        acquired=np.sort(rng.choice(n_days, n, p=p_acquired / p_acquired.sum())),
        rate=rng.gamma(_RATE_SHAPE, 1.0 / _RATE_RATE, n),
        lifetime=rng.exponential(1.0 / rng.gamma(_DROP_SHAPE, 1.0 / _DROP_RATE, n)),
        basket=rng.lognormal(np.log(1.6), 0.6, n),
        quantity_mu=(rng.normal(0.1, 0.55, n) + np.where(trade, 1.8, 0.0)).astype(np.float32),
        cum_preference=np.cumsum(
            0.8 * rng.dirichlet(catalogue.mix * 4.0, n) + 0.2 * catalogue.mix, axis=1
        ).astype(np.float32),
        channel=rng.choice(len(_CHANNELS), n, p=_CHANNEL_SHARE),
        country=rng.choice(len(_COUNTRIES), n, p=country_share / country_share.sum()),
        first_name=rng.integers(0, len(_FIRST_NAMES), n),
        last_name=rng.integers(0, len(_LAST_NAMES), n),
        email_pattern=rng.integers(0, 3, n),
        email_domain=rng.choice(len(_EMAIL_DOMAINS), n, p=_EMAIL_DOMAIN_SHARE),
    )


def _orders(rng: np.random.Generator, customers: _Customers, weight: np.ndarray) -> _Orders:
    """First order on the arrival day, repeats as a seasonal Poisson process until dropout."""
    c, n_days = customers, len(weight)
    cum_weight = np.concatenate([[0.0], np.cumsum(weight)])
    day_axis = np.arange(n_days + 1, dtype=float)
    active_from = c.acquired + 1.0
    active_to = np.maximum(np.minimum(c.acquired + c.lifetime, float(n_days)), active_from)
    w_from = np.interp(active_from, day_axis, cum_weight)
    w_span = np.interp(active_to, day_axis, cum_weight) - w_from
    repeats = rng.poisson(c.rate * w_span)
    repeater = np.repeat(np.arange(len(c.acquired), dtype=np.int32), repeats)
    u = w_from[repeater] + rng.random(len(repeater)) * w_span[repeater]
    repeat_day = np.minimum(np.interp(u, cum_weight, day_axis).astype(np.int64), n_days - 1)
    customer = np.concatenate([np.arange(len(c.acquired), dtype=np.int32), repeater])
    day = np.concatenate([c.acquired, repeat_day])
    n_orders = len(customer)
    channel = np.where(
        rng.random(n_orders) < _CHANNEL_LOYALTY,
        c.channel[customer],
        rng.choice(len(_CHANNELS), n_orders, p=_CHANNEL_SHARE),
    ).astype(np.int8)
    minute = day * 1440 + _hours(rng, channel) * 60 + rng.integers(0, 60, n_orders)
    return _Orders(
        customer=customer,
        minute=minute,
        channel=channel,
        is_return=np.zeros(n_orders, dtype=bool),
        guest=np.zeros(n_orders, dtype=bool),
    )


def _lines(
    rng: np.random.Generator,
    customers: _Customers,
    orders: _Orders,
    sale: np.ndarray,
    catalogue: _Catalogue,
) -> _Lines:
    """Basket lines: category by the buyer's preferences, product by popularity within it."""
    n_orders = len(orders.customer)
    size = np.minimum(1 + rng.poisson(customers.basket[orders.customer]), _MAX_LINES)
    order = np.repeat(np.arange(n_orders, dtype=np.int32), size)
    category = _pick_rows(
        customers.cum_preference,
        orders.customer[order],
        rng.random(len(order), dtype=np.float32),
    )
    u = rng.random(len(order), dtype=np.float32)
    product = np.empty(len(order), dtype=np.int16)
    for k, offset in enumerate(catalogue.offset):
        mask = category == k
        product[mask] = offset + np.searchsorted(catalogue.cum_popularity[k], u[mask])
    del category, u
    # A product appears at most once per order (the first draw is kept), so clean data has no
    # duplicate lines.
    key = order.astype(np.int64) * len(catalogue.cents) + product
    by_key = np.argsort(key, kind="stable")
    key = key[by_key]
    first = np.ones(len(order), dtype=bool)
    first[by_key[1:][key[1:] == key[:-1]]] = False
    del key, by_key
    order, product = order[first], product[first]

    customer = orders.customer[order]
    noise = rng.standard_normal(len(order), dtype=np.float32) * np.float32(0.45)
    quantity = np.rint(np.exp(customers.quantity_mu[customer] + noise))
    quantity = np.clip(quantity, 1, _MAX_QUANTITY).astype(np.int32)
    on_sale = sale[orders.minute[order] // 1440]
    discount = rng.random(len(order), dtype=np.float32) < np.where(on_sale, 0.3, 0.05)
    cents = catalogue.cents[product]
    cents = np.where(discount, np.rint(cents * 0.8), cents).astype(np.int32)
    return _Lines(
        order=order,
        product=product,
        quantity=quantity,
        cents=cents,
        id_style=np.zeros(len(order), dtype=np.int8),
    )


def _returns(
    rng: np.random.Generator, orders: _Orders, lines: _Lines, n_days: int
) -> tuple[_Orders, _Lines]:
    """Append return and cancellation invoices after some orders, for some of their lines."""
    n_orders = len(orders.customer)
    size = np.bincount(lines.order, minlength=n_orders)
    position = np.arange(len(lines.order)) - (np.cumsum(size) - size)[lines.order]
    picked = rng.random(n_orders) < _RETURN_ORDER_RATE
    forced = np.floor(rng.random(n_orders) * size).astype(np.int64)  # always returned
    cancel = rng.random(n_orders) < 0.3  # same-day cancellation, else a return within weeks
    delay = np.where(
        cancel,
        rng.integers(5, 240, n_orders),
        (1.0 + rng.exponential(10.0, n_orders)).astype(np.int64) * 1440
        + rng.integers(-300, 300, n_orders),
    )
    when = orders.minute + delay
    picked &= when < n_days * 1440  # never after the end
    back = picked[lines.order] & (
        (rng.random(len(lines.order), dtype=np.float32) < _RETURN_EXTRA_LINE)
        | (position == forced[lines.order])
    )
    source = np.flatnonzero(picked)
    new_order = np.full(n_orders, -1, dtype=np.int64)
    new_order[source] = n_orders + np.arange(len(source))
    bought = lines.quantity[back]
    full = rng.random(len(bought)) < 0.6
    partial = 1 + np.floor(rng.random(len(bought)) * bought).astype(np.int32)
    returned = _Lines(
        # Increasing with the source order, so the lines stay sorted by order.
        order=new_order[lines.order[back]].astype(np.int32),
        product=lines.product[back],
        quantity=-np.where(full, bought, partial).astype(np.int32),
        cents=lines.cents[back],
        id_style=lines.id_style[back],
    )
    orders = _Orders(
        customer=np.concatenate([orders.customer, orders.customer[source]]),
        minute=np.concatenate([orders.minute, when[source]]),
        channel=np.concatenate([orders.channel, orders.channel[source]]),
        is_return=np.concatenate([orders.is_return, np.ones(len(source), dtype=bool)]),
        guest=np.concatenate([orders.guest, orders.guest[source]]),
    )
    lines = _Lines(
        *(
            np.concatenate([getattr(lines, f.name), getattr(returned, f.name)])
            for f in fields(lines)
        )
    )
    return orders, lines


def _by_invoice(orders: _Orders, lines: _Lines) -> tuple[_Orders, _Lines]:
    """Give invoices numbers in time order and put the lines in invoice order.

    Lines must be sorted by order; they are regrouped with index arithmetic, not a sort.
    """
    n_orders = len(orders.customer)
    ranked = np.argsort(orders.minute, kind="stable")
    size = np.bincount(lines.order, minlength=n_orders)
    ranked_size = size[ranked]
    shift = (np.cumsum(size) - size)[ranked] - (np.cumsum(ranked_size) - ranked_size)
    source = np.arange(len(lines.order)) + np.repeat(shift, ranked_size)
    lines = lines.take(source)
    lines = _Lines(
        order=np.repeat(np.arange(n_orders, dtype=np.int32), ranked_size),
        product=lines.product,
        quantity=lines.quantity,
        cents=lines.cents,
        id_style=lines.id_style,
    )
    orders = _Orders(*(getattr(orders, f.name)[ranked] for f in fields(orders)))
    return orders, lines


def _dirty_lines(
    rng: np.random.Generator, orders: _Orders, lines: _Lines
) -> tuple[_Orders, _Lines]:
    """Guest invoices, badly written customer ids and duplicate lines."""
    guest = rng.random(len(orders.customer)) < DIRT_RATES["missing_customer_id"]
    orders = _Orders(
        customer=orders.customer,
        minute=orders.minute,
        channel=orders.channel,
        is_return=orders.is_return,
        guest=guest,
    )
    n_lines = len(lines.order)
    u = rng.random(n_lines, dtype=np.float32)
    id_style = np.zeros(n_lines, dtype=np.int8)
    id_style[u < DIRT_RATES["float_customer_id"]] = 1
    id_style[u > 1.0 - DIRT_RATES["spaced_customer_id"]] = 2
    lines = _Lines(
        order=lines.order,
        product=lines.product,
        quantity=lines.quantity,
        cents=lines.cents,
        id_style=id_style,
    )
    twice = rng.random(n_lines, dtype=np.float32) < DIRT_RATES["duplicate_lines"]
    return orders, lines.take(np.repeat(np.arange(n_lines), 1 + twice))


def _contacts(
    customers: _Customers, dirt_rng: np.random.Generator | None
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """Build the Customer ID, country, email and first name of each customer, as text."""
    c, n = customers, len(customers.acquired)
    customer_id = pc.cast(pa.array(_FIRST_CUSTOMER + np.arange(n)), pa.string())
    first_lower = pc.take(pa.array([f.lower() for f in _FIRST_NAMES]), pa.array(c.first_name))
    surname = pc.take(pa.array(_LAST_NAMES), pa.array(c.last_name))
    join = pc.binary_join_element_wise
    local = pc.choose(
        pa.array(c.email_pattern),
        join(first_lower, surname, customer_id, "."),
        join(pc.utf8_slice_codeunits(first_lower, 0, 1), surname, customer_id, ""),
        join(first_lower, customer_id, "_"),
    )
    email = join(local, pc.take(pa.array(_EMAIL_DOMAINS), pa.array(c.email_domain)), "@")
    names = pc.take(pa.array(_FIRST_NAMES), pa.array(c.first_name))
    if dirt_rng is not None:
        email, names = _dirty_contacts(dirt_rng, email, names)
    country = pc.take(pa.array([name for name, _ in _COUNTRIES]), pa.array(c.country))
    return customer_id, country, email, names


def _dirty_contacts(
    rng: np.random.Generator, email: pa.Array, names: pa.Array
) -> tuple[pa.Array, pa.Array]:
    """Spoil emails and first names per customer at the rates of :data:`DIRT_RATES`."""
    n = len(email)
    kinds = ("email_missing", "email_uppercase", "email_spaces", "email_invalid")
    shares = np.array([DIRT_RATES[k] for k in kinds])
    kind = rng.choice(len(kinds) + 1, n, p=[*shares, 1.0 - shares.sum()])
    variant = pa.array(rng.integers(0, 4, n))
    upper = pc.choose(variant, *[pc.utf8_upper(email), pc.utf8_capitalize(email)] * 2)
    spaced = pc.choose(
        variant,
        pc.binary_join_element_wise(" ", email, ""),
        pc.binary_join_element_wise(email, " ", ""),
        pc.binary_join_element_wise("  ", email, ""),
        pc.binary_join_element_wise(email, "  ", ""),
    )
    invalid = pc.choose(
        variant,
        pc.replace_substring(email, "@", ""),
        pc.replace_substring(email, "@", "@@"),
        pc.replace_substring_regex(email, "@.*$", "@"),
        pc.replace_substring(email, ".", " ", max_replacements=1),
    )
    missing = pa.nulls(n, pa.string())
    email = pc.choose(pa.array(kind), missing, upper, spaced, invalid, email)
    no_name = pa.array(rng.random(n) < DIRT_RATES["first_name_missing"])
    names = pc.if_else(no_name, pa.nulls(n, pa.string()), names)
    return email, names


def _table(sim: _Simulation, lo: int, hi: int, *, price_text: bool) -> pa.Table:
    """Format lines ``lo:hi`` as an Arrow table with the columns of :data:`COLUMNS`."""
    lines, orders, cat = sim.lines, sim.orders, sim.catalogue
    order = lines.order[lo:hi]
    product = pa.array(lines.product[lo:hi])
    # Invoice text and date are formatted once per invoice: lines lo:hi cover the invoices
    # order[0]..order[-1] (each invoice has a line), then spread to the lines.
    first = int(order[0]) if len(order) else 0
    span = np.arange(first, int(order[-1]) + 1 if len(order) else 0)
    per_line = pa.array(order - first)
    invoice = pc.cast(pa.array(_FIRST_INVOICE + span), pa.string())
    invoice = pc.if_else(
        pa.array(orders.is_return[span]), pc.binary_join_element_wise("C", invoice, ""), invoice
    )
    epoch = int(sim.start.value // 1_000_000_000)
    when = pa.array(epoch + orders.minute[span] * 60, type=pa.timestamp("s"))
    when = pc.strftime(when, format="%Y-%m-%d %H:%M:%S")
    cents = lines.cents[lo:hi]
    if price_text:  # exact two decimals, as in the source system
        price = pc.binary_join_element_wise(
            pc.cast(pa.array(cents // 100), pa.string()),
            pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0"),
            ".",
        )
    else:
        price = pa.array(cents / 100)
    customer = orders.customer[order]
    who = pa.array(customer, mask=orders.guest[order])
    customer_id = pc.take(sim.customer_id, who)
    style = lines.id_style[lo:hi]
    customer_id = pc.if_else(
        pa.array(style == 1), pc.binary_join_element_wise(customer_id, ".0", ""), customer_id
    )
    customer_id = pc.if_else(
        pa.array(style == 2), pc.binary_join_element_wise(" ", customer_id, " ", ""), customer_id
    )
    columns = [
        pc.take(invoice, per_line),
        pc.take(cat.code, product),
        pc.take(cat.description, product),
        pa.array(lines.quantity[lo:hi].astype(np.int64)),
        pc.take(when, per_line),
        price,
        customer_id,
        pc.take(sim.country, pa.array(customer)),
        pc.take(sim.email, who),
        pc.take(sim.first_name, who),
        pc.take(cat.category_names, pa.array(cat.category[lines.product[lo:hi]])),
        pc.take(pa.array(_CHANNELS), pa.array(orders.channel[order])),
    ]
    return pa.table(columns, names=list(COLUMNS))


# --- optional CRM inputs --------------------------------------------------------------------------
# Sample files for the KPIs of rfm_engine.io.crm_inputs, simulated around a transaction history.

#: Input kinds written by :func:`write_crm_inputs`, in order (as ``<kind>.csv``).
CRM_INPUT_KINDS: tuple[str, ...] = (
    "costs", "surveys", "tickets", "leads", "subscriptions", "email_events",
)
# Marketing channel -> (share of new customers it brings, cost per new customer in GBP,
# fixed monthly cost such as the email tool's subscription).
_COST_CHANNELS: dict[str, tuple[float, float, float]] = {
    "paid_search": (0.35, 22.0, 0.0),
    "paid_social": (0.25, 28.0, 0.0),
    "display": (0.10, 40.0, 0.0),
    "affiliates": (0.15, 12.0, 0.0),
    "email": (0.15, 3.0, 350.0),
}
_TICKET_RATE = 0.06  # share of orders that lead to a support ticket
_FIRST_CONTACT = 0.72  # chance a ticket is solved at the first contact (contacts ~ geometric)
_NPS_RATE = (0.15, 0.30)  # share of one-time / repeat buyers who answer the NPS survey
_NPS_CLASSES = ((0.30, 0.35, 0.35), (0.12, 0.30, 0.58))  # detractor, passive, promoter
_NPS_WEIGHTS = ((1, 1, 1, 2, 3, 5, 7), (5, 4), (5, 4))  # scores 0-6, 7-8, 9-10
_CSAT_RATE, _CES_RATE = 0.40, 0.25  # share of resolved tickets answered
_CSAT_SHARE = ((0.03, 0.04, 0.10, 0.38, 0.45), (0.10, 0.15, 0.25, 0.30, 0.20))  # 1 / more contacts
_CES_SHARE = ((0.02, 0.03, 0.05, 0.10, 0.20, 0.30, 0.30),
              (0.08, 0.12, 0.15, 0.20, 0.20, 0.15, 0.10))
_LEAD_RATE, _LEADS_LOST_PER_WON = 0.35, 2.5
_CLUB_RATE = (0.04, 0.15)  # share of one-time / repeat buyers who join the monthly club
_CLUB_RENEWAL = 0.88
_EMAIL_REACH = (0.15, 0.35)  # share of eligible customers mailed by a campaign (uniform)
_OPEN_RATE = {"activation": 0.30, "retention": 0.42, "resurrection": 0.18}
_CLICK_RATE = {"activation": 0.20, "retention": 0.15, "resurrection": 0.12}
_BOUNCE, _UNSUBSCRIBE, _SPAM = 0.02, 0.006, 0.0008


def generate_crm_inputs(transactions: pd.DataFrame, *, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Simulate the optional CRM inputs (costs, surveys, tickets, leads, ...) of a history.

    Everything happens between the first and the last order of ``transactions`` and uses its
    customers, so KPIs computed from the inputs line up with the transaction KPIs:

    - ``costs``: per month and channel (paid_search, paid_social, display, affiliates,
      email), about a share of the month's new customers times the channel's cost per new
      customer (lognormal noise), plus the email tool's fixed 350 a month.
    - ``tickets``: 6% of orders lead to a ticket within days; 72% are solved at the first
      contact (``contacts`` is geometric); tickets still open at the end have no
      ``resolved_at`` and no ``contacts``.
    - ``surveys``: an NPS survey answered by 15% of one-time and 30% of repeat buyers some
      days after a time between their first and last order (repeat buyers are more often
      promoters; 5% anonymous), and CSAT
      (40%) and CES (25%) answers after resolved tickets, better after a single contact.
    - ``leads``: 35% of customers first came in as a lead created days before their first
      order, won at that order (``customer_id`` set); 2.5 times as many leads never buy,
      70% of them closed as lost weeks later, the rest still open.
    - ``subscriptions``: a monthly club joined at the first order by 4% of one-time and 15%
      of repeat buyers; one row per term ending at a month end, renewed with probability
      0.88; the term running at the end has an empty ``renewed``.
    - ``email_events``: one send per campaign of
      :data:`rfm_engine.campaigns.plan.DEFAULT_PLAN`, weekly over the last eight weeks, each to
      15-35% of the customers with a valid email: ``delivered`` or ``bounce`` (2%),
      ``open`` (18-42% by campaign type, some twice), ``click`` (12-20% of openers, a few
      without a recorded open), ``unsubscribe`` and ``spam_complaint`` (rare).

    Parameters
    ----------
    transactions : pandas.DataFrame
        A history with the ``Invoice``, ``InvoiceDate``, ``Customer ID`` and ``Email``
        columns of :func:`generate_transactions`. It is not modified. Guest lines and
        return invoices (``C...``) are ignored.
    seed : int, default=0
        Seed: the same history and seed give identical frames.

    Returns
    -------
    dict of str to pandas.DataFrame
        One frame per kind of :data:`CRM_INPUT_KINDS`, in the canonical columns of
        :data:`rfm_engine.io.crm_inputs.INPUT_SCHEMAS`, dates as ISO 8601 text.

    Raises
    ------
    MissingColumnsError
        If a needed column is missing.
    ConfigError
        If ``seed`` is out of range or no order has a customer id.

    Examples
    --------
    >>> from rfm_engine.io.crm_inputs import read_input
    >>> from rfm_engine.measurement.crm_kpis import nps
    >>> from rfm_engine.datasets.sample_data import generate_crm_inputs, generate_transactions
    >>> inputs = generate_crm_inputs(generate_transactions(300, seed=1), seed=1)
    >>> sorted(inputs)
    ['costs', 'email_events', 'leads', 'subscriptions', 'surveys', 'tickets']
    >>> list(inputs["tickets"].columns)
    ['ticket_id', 'customer_id', 'opened_at', 'resolved_at', 'contacts']
    >>> surveys = read_input("surveys", inputs["surveys"])
    >>> int(nps(surveys)["n"].iloc[0]) > 0
    True
    """
    name = "generate_crm_inputs"
    needed = ("Invoice", "InvoiceDate", "Customer ID", "Email")
    require_columns(transactions, needed, "transactions")
    _check_seed(seed, name)
    customers, orders = _crm_people(transactions)
    if orders.empty:
        raise ConfigError(f"{name} needs at least one order with a customer id.")
    start, end = orders["when"].min().normalize(), orders["when"].max()
    rng = dict(zip(CRM_INPUT_KINDS, map(np.random.default_rng,
                                        np.random.SeedSequence(seed).spawn(6)), strict=True))
    tickets = _crm_tickets(rng["tickets"], orders, end)
    frames = {
        "costs": _crm_costs(rng["costs"], customers, start, end),
        "surveys": _crm_surveys(rng["surveys"], customers, tickets, end),
        "tickets": tickets,
        "leads": _crm_leads(rng["leads"], customers, start, end),
        "subscriptions": _crm_subscriptions(rng["subscriptions"], customers, end),
        "email_events": _crm_email_events(rng["email_events"], customers, end),
    }
    return {kind: _crm_text_dates(frame) for kind, frame in frames.items()}


def write_crm_inputs(
    folder: str | os.PathLike[str], transactions: pd.DataFrame, seed: int = 0
) -> dict[str, Path]:
    """Write :func:`generate_crm_inputs` as ``<kind>.csv`` files, all or nothing.

    The files (``costs.csv``, ``surveys.csv``, ``tickets.csv``, ``leads.csv``,
    ``subscriptions.csv``, ``email_events.csv``) are written to temporary files in
    ``folder`` (created if needed) and renamed into place only when all are complete
    (:func:`rfm_engine.io.writers.write_all`); existing files are replaced.

    Parameters
    ----------
    folder : str or os.PathLike
        Output folder.
    transactions : pandas.DataFrame
        As for :func:`generate_crm_inputs`.
    seed : int, default=0
        Seed: the same history and seed give byte-identical files.

    Returns
    -------
    dict of str to pathlib.Path
        Kind -> written file.

    Examples
    --------
    >>> import tempfile
    >>> from rfm_engine.io.crm_inputs import read_input
    >>> from rfm_engine.datasets.sample_data import generate_transactions, write_crm_inputs
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write_crm_inputs(tmp, generate_transactions(200, seed=2), seed=2)
    ...     leads = read_input("leads", paths["leads"])
    ...     paths["email_events"].name, leads.rows_dropped
    ('email_events.csv', 0)
    """
    from ..io.writers import table_writer, write_all

    frames = generate_crm_inputs(transactions, seed=seed)
    target = Path(folder)
    paths = {kind: target / f"{kind}.csv" for kind in CRM_INPUT_KINDS}
    write_all({paths[k]: table_writer(frames[k], ".csv") for k in CRM_INPUT_KINDS}, force=True)
    return paths


#: Shares of the customers per consent record of :func:`generate_consent` (the rest: no row).
CONSENT_SHARES: dict[str, float] = {"express": 0.70, "implied": 0.20, "withdrawn": 0.03,
                                    "objected": 0.01}


def generate_consent(transactions: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Simulate the consent records of a history (the weekly run's consent input).

    One row per customer with an id, in :data:`CONSENT_SHARES`: express consent given at
    the first order (keyed by customer id), implied consent (CASL: it lapses two years after
    the last purchase; keyed by the address when the customer has a valid one nobody else
    uses, else by id), withdrawn (keyed the same way) and objected to profiling (by id); the
    remaining 6% have no row. See :mod:`rfm_engine.campaigns.consent`.

    Parameters
    ----------
    transactions : pandas.DataFrame
        In the layout of :func:`generate_transactions` (text or parsed values).
    seed : int, default=0
        Seed: the same history and seed give the same rows.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``email``, ``status``, ``basis``, ``granted_at`` (text; empty
        cells as empty strings).

    Examples
    --------
    >>> from rfm_engine.datasets.sample_data import generate_consent, generate_transactions
    >>> consent = generate_consent(generate_transactions(300, seed=1), seed=1)
    >>> sorted(consent["status"].unique())
    ['granted', 'objected', 'withdrawn']
    """
    _check_seed(seed, "generate_consent")
    customers, _ = _crm_people(transactions)
    draw = np.random.default_rng(np.random.SeedSequence([seed, 0xC0]).spawn(1)[0]).random(
        len(customers))
    kinds = np.array(list(CONSENT_SHARES) + [""])[
        np.searchsorted(np.cumsum(list(CONSENT_SHARES.values())), draw, side="right")]
    email = customers["email"].where(~customers["email"].duplicated(keep=False))
    by_email = email.notna().to_numpy() & np.isin(kinds, ["implied", "withdrawn"])
    rows = pd.DataFrame({
        "customer_id": customers["id"].where(~by_email, ""),
        "email": email.where(by_email, "").fillna(""),
        "status": pd.Series(kinds).map({"express": "granted", "implied": "granted",
                                        "withdrawn": "withdrawn", "objected": "objected"}),
        "basis": pd.Series(kinds).map({"express": "express", "implied": "implied"}).fillna(""),
        "granted_at": customers["first"].dt.strftime("%Y-%m-%d").where(kinds == "express", ""),
    })
    return rows[kinds != ""].reset_index(drop=True).astype("str")


def write_consent(folder: str | os.PathLike, transactions: pd.DataFrame, *,
                  seed: int = 0) -> Path:
    """Write :func:`generate_consent` as ``consent.csv`` in ``folder``; return its path."""
    from ..io.writers import table_writer, write_all

    path = Path(folder) / "consent.csv"
    write_all({path: table_writer(generate_consent(transactions, seed=seed), ".csv")},
              force=True)
    return path


def write_sample_data(folder: str | os.PathLike[str], *, n_customers: int = 5000,
                      seed: int = 0) -> dict[str, Path]:
    """Write the whole sample data set: transactions, suppression, consent and CRM inputs.

    :func:`write_sample`, then :func:`write_consent` and :func:`write_crm_inputs` of the
    transactions written (read back as text, as a user's export would be), all with
    ``seed``. What ``rfm-engine sample`` writes; the same arguments give byte-identical
    files.

    Parameters
    ----------
    folder : str or PathLike
        Created if needed; existing files are replaced.
    n_customers : int, default=5000
        Customers to simulate.
    seed : int, default=0
        Random seed.

    Returns
    -------
    dict
        Name (``transactions``, ``suppression``, ``consent``, ``costs``, ...) to path, in
        the order written.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_sample_data(tempfile.mkdtemp(), n_customers=50)
    >>> list(paths)[:3]
    ['transactions', 'suppression', 'consent']
    """
    paths = write_sample(folder, n_customers=n_customers, seed=seed)
    transactions = pd.read_csv(paths["transactions"], dtype=str, keep_default_na=False)
    paths["consent"] = write_consent(folder, transactions, seed=seed)
    paths.update(write_crm_inputs(folder, transactions, seed=seed))
    return paths


def _crm_people(transactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per purchase order (not returns, not guests), and one per customer."""
    ids = transactions["Customer ID"].astype("str").str.strip().str.replace(
        r"\.0$", "", regex=True)
    invoice = transactions["Invoice"].astype("str").str.strip()
    keep = (ids.notna() & (ids != "") & ~invoice.str.startswith("C", na=True)).to_numpy(bool)
    lines = pd.DataFrame({
        "id": ids[keep].to_numpy(),
        "invoice": invoice[keep].to_numpy(),
        "when": pd.to_datetime(transactions["InvoiceDate"][keep].to_numpy(), format="ISO8601"),
        "email": transactions["Email"][keep].astype("str").str.strip().str.lower().to_numpy(),
    })
    orders = (lines.drop_duplicates("invoice")
              .sort_values(["when", "invoice"], kind="stable").reset_index(drop=True))
    email = lines["email"].where(lines["email"].str.fullmatch(_VALID_EMAIL).fillna(False))
    customers = (
        orders.groupby("id", sort=False)
        .agg(first=("when", "min"), last=("when", "max"), orders=("invoice", "size"))
        .join(email.groupby(lines["id"]).first().rename("email"))
        .rename_axis("id").reset_index()
    )
    customers = (customers.assign(length=customers["id"].str.len())
                 .sort_values(["length", "id"], kind="stable")
                 .drop(columns="length").reset_index(drop=True))
    return customers, orders[["id", "when"]]


def _crm_seconds(values: np.ndarray) -> pd.TimedeltaIndex:
    return pd.to_timedelta(np.rint(values).astype(np.int64), unit="s")


def _crm_ids(prefix: str, n: int, width: int = 6) -> pd.Series:
    return pd.Series([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype="str")


def _crm_text_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as ISO 8601 text (``YYYY-MM-DD HH:MM:SS``); dates at midnight as a day."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            stamps = out[column]
            day_only = bool((stamps.dropna() == stamps.dropna().dt.normalize()).all())
            out[column] = stamps.dt.strftime("%Y-%m-%d" if day_only else "%Y-%m-%d %H:%M:%S")
    return out


def _crm_costs(rng: np.random.Generator, customers: pd.DataFrame, start: pd.Timestamp,
               end: pd.Timestamp) -> pd.DataFrame:
    months = pd.period_range(start, end, freq="M")
    new = (customers["first"].dt.to_period("M").value_counts()
           .reindex(months, fill_value=0).to_numpy(dtype=float))
    channels = list(_COST_CHANNELS)
    share, per_customer, fixed = (np.array(v) for v in zip(*_COST_CHANNELS.values(),
                                                           strict=True))
    noise = rng.lognormal(0.0, 0.2, (len(months), len(channels)))
    spend = new[:, None] * share * per_customer * noise + fixed
    return pd.DataFrame({
        "period": pd.Series(np.repeat(months.strftime("%Y-%m"), len(channels)), dtype="str"),
        "channel": pd.Series(channels * len(months), dtype="str"),
        "costs": np.round(spend.ravel(), 2),
    })


def _crm_tickets(rng: np.random.Generator, orders: pd.DataFrame,
                 end: pd.Timestamp) -> pd.DataFrame:
    picked = orders[rng.random(len(orders)) < _TICKET_RATE]
    n = len(picked)
    opened = (picked["when"] + _crm_seconds(rng.exponential(2.5 * 86400, n))).dt.floor("min")
    contacts = rng.geometric(_FIRST_CONTACT, n)
    hours = rng.gamma(2.0 * contacts, 6.0)  # each contact about half a day
    resolved = (opened + _crm_seconds(hours * 3600)).dt.floor("min")
    before = (opened <= end).to_numpy()
    done = (resolved <= end).to_numpy()
    tickets = pd.DataFrame({
        "customer_id": picked["id"].to_numpy(),
        "opened_at": opened.to_numpy(),
        "resolved_at": resolved.where(done).to_numpy(),
        "contacts": pd.array(np.where(done, contacts, 0), dtype="Int64"),
    })[before].sort_values("opened_at", kind="stable").reset_index(drop=True)
    tickets["contacts"] = tickets["contacts"].mask(tickets["resolved_at"].isna())
    tickets.insert(0, "ticket_id", _crm_ids("T", len(tickets)))
    return tickets


def _crm_pick(rng: np.random.Generator, shares: tuple[float, ...], n: int) -> np.ndarray:
    p = np.asarray(shares, dtype=float)
    return rng.choice(len(p), n, p=p / p.sum())


def _crm_surveys(rng: np.random.Generator, customers: pd.DataFrame, tickets: pd.DataFrame,
                 end: pd.Timestamp) -> pd.DataFrame:
    repeat = (customers["orders"] > 1).to_numpy()
    asked = rng.random(len(customers)) < np.where(repeat, _NPS_RATE[1], _NPS_RATE[0])
    who = customers[asked]
    n = len(who)
    klass = np.where(repeat[asked], 1, 0)
    group = np.array([_crm_pick(rng, _NPS_CLASSES[k], 1)[0] for k in klass], dtype=int)
    offset = np.array([0, 7, 9])
    score = offset[group] + np.array([_crm_pick(rng, _NPS_WEIGHTS[g], 1)[0] for g in group],
                                     dtype=int)
    anonymous = rng.random(n) < 0.05
    nps = pd.DataFrame({
        "customer_id": who["id"].where(~anonymous).to_numpy(),
        "date": (who["first"] + (who["last"] - who["first"]) * rng.random(n)
                 + _crm_seconds(rng.uniform(2, 14, n) * 86400)).dt.floor("min"),
        "survey": "nps",
        "score": score,
    })
    resolved = tickets[tickets["resolved_at"].notna()]
    single = (resolved["contacts"] == 1).to_numpy(dtype=bool)
    parts = [nps]
    for survey, rate, shares in (("csat", _CSAT_RATE, _CSAT_SHARE), ("ces", _CES_RATE,
                                                                      _CES_SHARE)):
        answered = rng.random(len(resolved)) < rate
        k = int(answered.sum())
        first_scale = _crm_pick(rng, shares[0], k)
        other_scale = _crm_pick(rng, shares[1], k)
        parts.append(pd.DataFrame({
            "customer_id": resolved["customer_id"][answered].to_numpy(),
            "date": (resolved["resolved_at"][answered]
                     + _crm_seconds(rng.uniform(0.1, 48, k) * 3600)).dt.floor("min").to_numpy(),
            "survey": survey,
            "score": 1 + np.where(single[answered], first_scale, other_scale),
        }))
    surveys = pd.concat(parts, ignore_index=True)
    surveys = surveys[surveys["date"] <= end].sort_values(["date", "survey"], kind="stable")
    surveys = surveys.reset_index(drop=True)
    surveys["customer_id"] = surveys["customer_id"].astype("str")
    surveys["survey"] = surveys["survey"].astype("str")
    surveys["score"] = surveys["score"].astype("int64")
    surveys.insert(0, "response_id", _crm_ids("R", len(surveys)))
    return surveys


def _crm_leads(rng: np.random.Generator, customers: pd.DataFrame, start: pd.Timestamp,
               end: pd.Timestamp) -> pd.DataFrame:
    came = rng.random(len(customers)) < _LEAD_RATE
    delay = _crm_seconds(rng.gamma(2.0, 9.0, int(came.sum())) * 86400)
    won = pd.DataFrame({
        "created_at": (customers["first"][came] - delay).dt.floor("min").to_numpy(),
        "won_at": customers["first"][came].to_numpy(),
        "customer_id": customers["id"][came].to_numpy(),
    })
    won = won[won["created_at"] >= start]
    n_lost = round(_LEADS_LOST_PER_WON * len(won))
    created = (start + _crm_seconds(rng.random(n_lost) * (end - start).total_seconds()))
    closed = created + _crm_seconds(rng.gamma(2.0, 12.0, n_lost) * 86400)
    lost = (rng.random(n_lost) < 0.7) & (closed <= end)
    others = pd.DataFrame({
        "created_at": created.floor("min"),
        "lost_at": pd.Series(closed.floor("min")).where(lost).to_numpy(),
    })
    leads = pd.concat([won, others], ignore_index=True)
    leads = leads.sort_values("created_at", kind="stable").reset_index(drop=True)
    leads = leads[["created_at", "won_at", "lost_at", "customer_id"]]
    leads["customer_id"] = leads["customer_id"].astype("str")
    leads.insert(0, "lead_id", _crm_ids("L", len(leads)))
    return leads


def _crm_subscriptions(rng: np.random.Generator, customers: pd.DataFrame,
                       end: pd.Timestamp) -> pd.DataFrame:
    repeat = (customers["orders"] > 1).to_numpy()
    joined = rng.random(len(customers)) < np.where(repeat, _CLUB_RATE[1], _CLUB_RATE[0])
    members = customers[joined].sort_values("first", kind="stable")
    terms = rng.geometric(1.0 - _CLUB_RENEWAL, len(members))  # the last one is not renewed
    member = np.repeat(np.arange(len(members)), terms)
    k = np.arange(len(member)) - np.repeat(np.cumsum(terms) - terms, terms)  # 0-based term
    first_month = pd.PeriodIndex(members["first"].dt.to_period("M"))[member]
    period_end = (first_month + k).to_timestamp(how="end").normalize()
    renewed = pd.array(k < terms[member] - 1, dtype="boolean")
    rows = pd.DataFrame({
        "subscription_id": _crm_ids("S", len(members), 5).to_numpy()[member],
        "customer_id": members["id"].to_numpy()[member],
        "period_end": period_end,
        "renewed": renewed,
    })
    # Terms ending after the history's end have not happened yet, except the running one,
    # whose renewal is still unknown.
    running = (rows["period_end"] > end) & (rows["period_end"] - pd.offsets.MonthEnd(1) <= end)
    rows.loc[running, "renewed"] = pd.NA
    rows = rows[(rows["period_end"] <= end) | running].reset_index(drop=True)
    return rows.astype({"subscription_id": "str", "customer_id": "str"})


def _crm_email_events(rng: np.random.Generator, customers: pd.DataFrame,
                      end: pd.Timestamp) -> pd.DataFrame:
    from ..campaigns.plan import DEFAULT_PLAN

    parts = []
    for k, campaign in enumerate(DEFAULT_PLAN):
        send = end.normalize() - pd.Timedelta(days=7 * (len(DEFAULT_PLAN) - k)) + pd.Timedelta(
            hours=10)
        eligible = customers[customers["email"].notna() & (customers["first"] <= send)]
        mailed = eligible[rng.random(len(eligible)) < rng.uniform(*_EMAIL_REACH)]
        n = len(mailed)
        bounced = rng.random(n) < _BOUNCE
        opened = ~bounced & (rng.random(n) < _OPEN_RATE[campaign.type])
        twice = opened & (rng.random(n) < 0.2)
        clicked = (opened & (rng.random(n) < _CLICK_RATE[campaign.type])) | (
            ~bounced & ~opened & (rng.random(n) < 0.01))  # images blocked: no open recorded
        unsubscribed = ~bounced & (rng.random(n) < _UNSUBSCRIBE * (1 + (campaign.type ==
                                                                         "resurrection")))
        spam = ~bounced & (rng.random(n) < _SPAM)
        arrival = rng.uniform(5, 120, n)
        first_open = arrival + rng.exponential(6 * 3600, n)
        events = [
            ("bounce", bounced, arrival),
            ("delivered", ~bounced, arrival),
            ("open", opened, first_open),
            ("open", twice, first_open + rng.exponential(24 * 3600, n)),
            ("click", clicked, first_open + rng.exponential(300, n)),
            ("unsubscribe", unsubscribed, first_open + rng.exponential(600, n)),
            ("spam_complaint", spam, first_open + rng.exponential(600, n)),
        ]
        for event, mask, seconds in events:
            parts.append(pd.DataFrame({
                "campaign": campaign.name,
                "customer_id": mailed["id"][mask].to_numpy(),
                "email": mailed["email"][mask].to_numpy(),
                "event": event,
                "timestamp": send + _crm_seconds(seconds[mask]),
            }))
    out = pd.concat(parts, ignore_index=True)
    out = out[out["timestamp"] <= end].sort_values("timestamp", kind="stable")
    return out.reset_index(drop=True).astype(
        {"campaign": "str", "customer_id": "str", "email": "str", "event": "str"})
