r"""Campaign assignment: segments to target lists, with suppression, exclusions, holdouts and caps.

The campaigns themselves (:class:`~rfm_engine.campaigns.plan.Campaign`, the default plan) are
defined in :mod:`rfm_engine.campaigns.plan`.

:func:`assign_campaigns` gives each customer at most one campaign and one ``group``:
``target`` (exported), ``holdout`` (recorded, never exported), ``suppressed``, ``excluded``
(with an ``exclusion_reason``) or ``none`` (no campaign claims the customer's segment).
:func:`campaign_counts` counts every step per campaign for the manifest. :func:`customer_flags`
gives the per-customer inputs of the rules (normalized email and its validity for the email
tool, consent, suppression, quarantine) as the weekly run computes them, on either engine.

Holdout draws
-------------
:func:`holdout_draw` hashes ``f"{customer_id}\x1f{campaign}\x1f{as_of:%Y-%m-%d}"`` (UTF-8) with
SHA-256 and reads the first 8 bytes as a big-endian unsigned integer ``u``; the draw is
``(u >> 11) / 2**53``, i.e. ``u / 2**64`` truncated to the 53 bits a float64 holds exactly, so
it lies in [0, 1) (a plain ``float(u) / 2**64`` rounds to 1.0 for the largest ``u``). A draw
depends only on its own customer id, campaign and date: not on row order, on other customers,
on the platform or on library versions (``hashlib`` is the standard SHA-256), so reruns and
later audits reproduce every holdout. Python's ``hashlib`` in a list comprehension hashes
1,000,000 ids in about 0.6 s, so no faster, less portable hash (such as
``pandas.util.hash_array``, whose output is not a documented stable format) is needed.

Cross-sell and up-sell suggestions live in :mod:`rfm_engine.campaigns.suggestions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from hashlib import sha256
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import DataError, InputError
from ..io._validation import (
    as_date,
    id_array,
    id_column,
    id_strings,
    numeric_column,
    require_columns,
)
from .exports import formula_cells, overlong_first_names
from .plan import DEFAULT_PLAN, EXCLUSION_REASONS, Campaign, segment_owner
from .suppression import SuppressionList, is_valid_email, normalize_email

if TYPE_CHECKING:
    from .consent import ConsentList

__all__ = [
    "COUNT_COLUMNS",
    "GROUPS",
    "assign_campaigns",
    "campaign_counts",
    "check_unique",
    "customer_flags",
    "holdout_draw",
    "last_contacts",
    "tally_counts",
]

#: Values of the ``group`` column of :func:`assign_campaigns`.
GROUPS: tuple[str, ...] = ("target", "holdout", "suppressed", "excluded", "none")
#: Columns of :func:`campaign_counts`, in order.
COUNT_COLUMNS: tuple[str, ...] = ("candidates", *EXCLUSION_REASONS, "holdout", "targets")


def holdout_draw(customer_ids: pd.Series | Sequence[Any], campaign: str,
                 as_of: date | str) -> np.ndarray:
    """Deterministic uniform draws in [0, 1), one per customer, for the holdout split.

    The draw hashes the customer id, the campaign and the run date with SHA-256 (see the
    module docs), so it depends on nothing else: not on row order, on the other customers, on
    the platform or on library versions.

    Parameters
    ----------
    customer_ids : Series or sequence
        Customer ids (text; other values are formatted with ``str``). No missing values.
    campaign : str
        The campaign name.
    as_of : date or str
        The run date (a datetime counts by its date; a string must be an ISO date).

    Returns
    -------
    ndarray of float64
        One draw per id, in the order given.

    Examples
    --------
    >>> holdout_draw(["a", "b"], "retention_loyal", date(2024, 3, 1)).round(6).tolist()
    [0.606889, 0.031587]
    >>> holdout_draw(["b"], "retention_loyal", "2024-03-01").round(6).tolist()
    [0.031587]
    """
    ids = id_strings(customer_ids, source="customer_ids")
    return _draws(ids, campaign, as_date(as_of, "as_of"))


def _draws(ids: Sequence[str], campaign: str, day: date) -> np.ndarray:
    """Hash already-validated id strings (see :func:`holdout_draw`)."""
    suffix = f"\x1f{campaign}\x1f{day.isoformat()}".encode()
    digest = b"".join([sha256(cid.encode() + suffix).digest()[:8] for cid in ids])
    words = np.frombuffer(digest, dtype=">u8").astype(np.uint64)
    return (words >> np.uint64(11)).astype(np.float64) * 2.0**-53


def customer_flags(customers: pd.DataFrame, *, as_of: date | str, layout: str = "generic",
                   suppression: SuppressionList | None = None,
                   consents: ConsentList | None = None) -> pd.DataFrame:
    """Compute the per-customer inputs of :func:`assign_campaigns`' rules, as a weekly run does.

    Each row depends on that customer's own fields alone, so an engine may compute the
    flags batch by batch (the Spark engine does, with this very function).

    Parameters
    ----------
    customers : DataFrame
        ``customer_id``; ``email`` and ``first_name`` when known; ``last_purchase`` when the
        consent list has implied consent.
    as_of : date or str
        The run date (consent is judged on it).
    layout : str, default="generic"
        The email tool's layout (:data:`rfm_engine.campaigns.exports.LAYOUTS`): its rule for a
        valid address and its longest first name.
    suppression : SuppressionList, optional
        Who must not be contacted (default: nobody).
    consents : ConsentList, optional
        The consent list; without it no ``email_consent`` column.

    Returns
    -------
    DataFrame
        Indexed like ``customers``: ``email`` (normalized, see
        :func:`~rfm_engine.campaigns.suppression.normalize_email`; missing when blank or
        absent), ``email_valid`` (``is_valid_email(email, layout)``), ``email_consent`` (with
        ``consents``: valid consent on ``as_of``), ``suppressed`` (by id or email) and
        ``quarantined`` (a contact field a spreadsheet would run as a formula, or a first name
        longer than the tool keeps).

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c"],
    ...                           "email": [" Ann@X.org", "bob@x", "=cmd@x.org"],
    ...                           "first_name": ["Ann", "Bob", "Cy"]})
    >>> customer_flags(customers, as_of="2024-03-01",
    ...                suppression=SuppressionList(customer_ids=["b"]))
            email  email_valid  suppressed  quarantined
    0   ann@x.org         True       False        False
    1       bob@x        False        True        False
    2  =cmd@x.org         True       False         True
    """
    require_columns(customers, ["customer_id"], "customers")
    email = (customers["email"] if "email" in customers
             else pd.Series(pd.NA, index=customers.index, dtype="string"))
    email = normalize_email(email)
    table = customers.assign(email=email)  # the rules read the normalized address
    flags = pd.DataFrame({"email": email, "email_valid": is_valid_email(email, layout)},
                         index=customers.index)
    if consents is not None:
        flags["email_consent"] = consents.valid(table, as_of)
    flags["suppressed"] = (suppression or SuppressionList.empty()).mask(table)
    contact = table[[c for c in ("customer_id", "email", "first_name") if c in table]]
    flags["quarantined"] = (formula_cells(contact)
                            | overlong_first_names(contact, layout)).to_numpy(dtype=bool)
    return flags


def assign_campaigns(
    customers: pd.DataFrame,
    campaigns: Sequence[Campaign] = DEFAULT_PLAN,
    *,
    as_of: date | str,
    suppressed: Any = None,
    contact_history: pd.DataFrame | None = None,
    quarantined: Any = None,
    no_consent: Any = None,
) -> pd.DataFrame:
    """Give every customer at most one campaign and a group.

    The rules apply in order; the first that fires decides a candidate's group:

    1. **Candidates**: customers whose ``segment`` a campaign claims. A customer joins at most
       one campaign: the highest ``priority`` wins (ties: the campaign earlier in the plan).
    2. **Suppression**: ``suppressed`` customers get group ``"suppressed"`` (reason
       ``"suppressed"``), whatever the channel. Suppression beats every other rule.
       **Consent** (email campaigns only): ``no_consent`` customers (no valid consent on
       ``as_of``, see :mod:`rfm_engine.campaigns.consent`) -> ``"no_consent"``.
    3. **Email address** (email campaigns only): no email (missing or blank) ->
       ``"no_email"``; an invalid one -> ``"invalid_email"``. Validity is read from a boolean
       ``email_valid`` column when the customer table has one (missing counts as invalid);
       without it, every non-blank email counts as valid.
    4. **Quarantine**: ``quarantined`` customers (a cell a spreadsheet would run as a formula)
       -> ``"quarantined"``. This applies to every channel, not only email: such a row must
       never reach any list.
    5. **Spacing**: a customer the same campaign targeted fewer than
       ``min_days_between_contacts`` days before ``as_of`` (per ``contact_history``) ->
       ``"contacted_recently"``. History rows dated ``as_of`` or later are ignored, so a rerun
       of a run already recorded gives the same result.
       **One row per address**: in an email campaign, customers sharing an email (as given:
       pass normalized emails) are reduced to the one with the highest ``monetary`` (ties:
       ``customer_id``); the others -> ``"duplicate_email"``, since the email tool keys
       contacts by address and would merge them.
    6. **Holdout**: eligible customers whose :func:`holdout_draw` is below
       ``holdout_fraction`` -> ``"holdout"``, the others -> ``"target"``.
    7. **Cap**: with ``max_size``, the eligible customers (targets and holdout) are ordered by
       ``monetary`` descending (ties: ``customer_id``; missing monetary last) and walked down
       until ``max_size`` targets are reached; holdout members met on the way stay holdout;
       everyone below the cut -> ``"over_cap"``. The holdout so spans the same value range as
       the targets.

    Groups ``"suppressed"`` and ``"excluded"`` carry their ``exclusion_reason``; customers no
    campaign claims are in group ``"none"``. Excluded, rather than dropped, rows keep the counts
    of every step (see :func:`campaign_counts`).

    Parameters
    ----------
    customers : DataFrame
        One row per customer with ``customer_id`` and ``segment``; ``email`` when the plan has
        an email campaign, ``monetary`` when a campaign has ``max_size``; optional boolean
        ``email_valid``.
    campaigns : sequence of Campaign, default=DEFAULT_PLAN
        The plan, in order.
    as_of : date or str
        The run date: seeds the holdout draws and measures the contact spacing.
    suppressed : array-like of bool, optional
        Per customer (same length as ``customers``; a Series must share its index): on the
        suppression list (by id or email).
    contact_history : DataFrame, optional
        Target rows of earlier runs: ``customer_id``, ``campaign``, ``as_of`` (date or ISO
        string).
    quarantined : array-like of bool, optional
        Per customer, like ``suppressed``: a field holds a spreadsheet formula.
    no_consent : array-like of bool, optional
        Per customer, like ``suppressed``: no valid email consent (email campaigns only).

    Returns
    -------
    DataFrame
        Indexed like ``customers``, with columns ``campaign``, ``campaign_type``, ``channel``
        (NA when no campaign), ``group``, ``exclusion_reason`` (NA unless suppressed or
        excluded), all categorical (one byte a customer), and ``holdout_draw`` (NaN when no
        campaign). ``customers`` is not modified.

    Raises
    ------
    MissingColumnsError
        When a needed column is absent.
    InputError
        When a flag array does not match the customers or a campaign name is repeated.

    Examples
    --------
    >>> customers = pd.DataFrame({
    ...     "customer_id": ["a", "b", "c", "d", "e"],
    ...     "segment": ["champions", "champions", "at_risk", "at_risk", "lost"],
    ...     "email": ["a@x.org", "b@x.org", None, "d@x.org", "e@x.org"],
    ...     "monetary": [50.0, 80.0, 20.0, 30.0, 5.0]})
    >>> plan = (Campaign("reward", "retention", ("champions",), holdout_fraction=0.0),
    ...         Campaign("winback", "resurrection", ("at_risk",), holdout_fraction=0.0))
    >>> out = assign_campaigns(customers, plan, as_of="2024-03-01",
    ...                        suppressed=[False, True, False, False, False])
    >>> out[["campaign", "group", "exclusion_reason"]]
      campaign       group exclusion_reason
    0   reward      target              NaN
    1   reward  suppressed       suppressed
    2  winback    excluded         no_email
    3  winback      target              NaN
    4      NaN        none              NaN
    """
    plan = tuple(campaigns)
    check_unique(plan)
    day = as_date(as_of, "as_of")
    needed = ["customer_id", "segment"]
    if any(c.channel == "email" for c in plan):
        needed.append("email")
    if any(c.max_size is not None for c in plan):
        needed.append("monetary")
    require_columns(customers, needed, "customers")
    n = len(customers)
    index = customers.index
    ids = id_column(customers["customer_id"], "customers")  # text, never one object per id
    suppressed_flags = _flags(suppressed, index, "suppressed")
    quarantined_flags = _flags(quarantined, index, "quarantined")
    no_consent_flags = _flags(no_consent, index, "no_consent")

    # 1. candidates: one campaign per customer, by priority
    owner = segment_owner(plan)
    keys = list(owner)
    segments = pd.Categorical(customers["segment"])  # the few values, then a code each
    hit = np.append(pd.Index(keys, dtype=object).get_indexer(
        segments.categories.to_numpy(dtype=object)), -1)[segments.codes]
    owners = np.array([owner[k] for k in keys] + [-1], dtype=np.int64)
    camp = owners[hit]  # -1 (no match) picks the trailing -1
    cand = camp >= 0

    draws = np.full(n, np.nan)
    for j, campaign in enumerate(plan):
        rows = np.flatnonzero(camp == j)
        for chunk in _chunks(rows):
            draws[chunk] = _draws(ids.iloc[chunk].tolist(), campaign.name, day)

    reason = np.full(n, -1, dtype=np.int8)  # codes of EXCLUSION_REASONS, -1: none
    open_ = cand.copy()  # candidates no rule has decided yet

    def exclude(mask: np.ndarray, why: str) -> None:
        decided = mask & open_
        reason[decided] = EXCLUSION_REASONS.index(why)
        open_[decided] = False

    # 2. suppression, every channel
    exclude(suppressed_flags, "suppressed")
    # 2b. consent, email campaigns only
    is_email = np.array([c.channel == "email" for c in plan] + [False])[camp]
    exclude(is_email & no_consent_flags, "no_consent")
    # 3. email address, email campaigns only
    if is_email.any():
        email = customers["email"]
        blank = (email.isna() | email.astype("str").str.strip().eq("")).to_numpy(dtype=bool)
        exclude(is_email & blank, "no_email")
        if "email_valid" in customers.columns:
            valid = _bool_column(customers["email_valid"], "email_valid")
            exclude(is_email & ~valid, "invalid_email")
    # 4. quarantine, every channel
    exclude(quarantined_flags, "quarantined")
    # 5. contact spacing
    if contact_history is not None:
        recent = _recently_contacted(ids, camp, open_, plan, contact_history, day)
        exclude(recent, "contacted_recently")
    # 5b. one row per address in an email list: the highest value keeps it
    if is_email.any():
        exclude(_duplicate_emails(customers, ids, camp, open_ & is_email), "duplicate_email")

    # 6. holdout
    code = {name: np.int8(i) for i, name in enumerate(GROUPS)}  # codes of GROUPS
    group = np.full(n, code["none"], dtype=np.int8)
    group[cand] = code["excluded"]
    group[reason == EXCLUSION_REASONS.index("suppressed")] = code["suppressed"]
    eligible = open_
    fraction = np.array([c.holdout_fraction for c in plan] + [0.0])[camp]
    group[eligible] = np.where(draws[eligible] < fraction[eligible], code["holdout"],
                               code["target"])

    # 7. cap, walking down by value so the holdout spans the targets' range
    capped = [j for j, c in enumerate(plan) if c.max_size is not None]
    if capped:
        monetary = numeric_column(customers["monetary"], "monetary", "customers")
        id_rank = pd.factorize(ids.to_numpy(dtype=object), sort=True)[0]
        for j in capped:
            rows = np.flatnonzero(eligible & (camp == j))
            rows = rows[np.lexsort((id_rank[rows], -monetary[rows]))]
            is_target = group[rows] == code["target"]
            before = np.cumsum(is_target) - is_target
            cut = rows[before >= plan[j].max_size]
            group[cut] = code["excluded"]
            reason[cut] = EXCLUSION_REASONS.index("over_cap")

    def column(values: list[str]) -> pd.Categorical:  # one value per campaign, NA for none
        labels = list(dict.fromkeys(values))
        codes = np.array([labels.index(v) for v in values] + [-1], dtype=np.int64)[camp]
        return _categorical(codes, labels)

    return pd.DataFrame(
        {
            "campaign": column([c.name for c in plan]),
            "campaign_type": column([c.type for c in plan]),
            "channel": column([c.channel for c in plan]),
            "group": _categorical(group, GROUPS),
            "exclusion_reason": _categorical(reason, EXCLUSION_REASONS),
            "holdout_draw": draws,
        },
        index=index,
    )


def _categorical(codes: np.ndarray, labels: Sequence[str]) -> pd.Categorical:
    """Text columns of few values, one byte a customer (-1: missing)."""
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(labels), dtype="str"))


def _duplicate_emails(customers: pd.DataFrame, ids: pd.Series, camp: np.ndarray,
                      rows: np.ndarray) -> np.ndarray:
    """Flag all but the most valuable customer sharing an email within one campaign."""
    positions = np.flatnonzero(rows)
    value = (numeric_column(customers["monetary"], "monetary", "customers")[positions]
             if "monetary" in customers else np.zeros(len(positions)))
    email = customers["email"].iloc[positions]
    # only the few rows sharing (campaign, email) with another need sorting (and objects)
    shared = pd.DataFrame({"camp": camp[positions],
                           "email": pd.factorize(email)[0]}).duplicated(keep=False).to_numpy()
    frame = pd.DataFrame({
        "pos": positions[shared], "camp": camp[positions][shared], "value": -value[shared],
        "id": ids.iloc[positions[shared]].to_numpy(dtype=object),
        "email": email.iloc[np.flatnonzero(shared)].to_numpy(dtype=object),
    }).sort_values(["camp", "email", "value", "id"], kind="stable")
    flags = np.zeros(len(ids), dtype=bool)
    flags[frame.loc[frame.duplicated(["camp", "email"]), "pos"].to_numpy()] = True
    return flags


def campaign_counts(assignment: pd.DataFrame, campaigns: Sequence[Campaign]) -> pd.DataFrame:
    """Count every step of :func:`assign_campaigns` per campaign.

    Parameters
    ----------
    assignment : DataFrame
        The output of :func:`assign_campaigns`.
    campaigns : sequence of Campaign
        The plan it was made with.

    Returns
    -------
    DataFrame
        One row per campaign (index ``campaign``, plan order, campaigns without candidates
        included) and the int columns of :data:`COUNT_COLUMNS`: ``candidates``, one column per
        exclusion reason, ``holdout`` and ``targets``. ``candidates`` is the sum of the others.

    Raises
    ------
    InputError
        When the assignment names a campaign that is not in the plan.

    Examples
    --------
    >>> assignment = pd.DataFrame({
    ...     "campaign": ["reward", "reward", "reward", None],
    ...     "group": ["target", "holdout", "suppressed", "none"],
    ...     "exclusion_reason": [None, None, "suppressed", None]})
    >>> plan = (Campaign("reward", "retention", ("champions",)),
    ...         Campaign("winback", "resurrection", ("at_risk",)))
    >>> campaign_counts(assignment, plan)[["candidates", "suppressed", "holdout", "targets"]]
    ... # doctest: +NORMALIZE_WHITESPACE
              candidates  suppressed  holdout  targets
    campaign
    reward             3           1        1        1
    winback            0           0        0        0
    """
    require_columns(assignment, ["campaign", "group", "exclusion_reason"], "assignment")
    # count the (campaign, reason, group) combinations first: a few rows, whatever the
    # customers, then label them
    combos = (pd.DataFrame({"campaign": assignment["campaign"],
                            "reason": assignment["exclusion_reason"],
                            "group": assignment["group"]})
              .groupby(["campaign", "reason", "group"], dropna=False, observed=True).size()
              .rename("n").reset_index())
    return tally_counts(combos, campaigns)


def tally_counts(combos: pd.DataFrame, campaigns: Sequence[Campaign]) -> pd.DataFrame:
    """Build the table of :func:`campaign_counts` from the counts of each combination.

    Parameters
    ----------
    combos : DataFrame
        ``campaign``, ``reason`` (the exclusion reason), ``group`` and ``n``: how many
        customers of the assignment have that combination (NA for a missing value), as an
        engine counts them.
    campaigns : sequence of Campaign
        The plan the assignment was made with.

    Returns
    -------
    DataFrame
        As :func:`campaign_counts`.

    Raises
    ------
    InputError
        When a combination names a campaign that is not in the plan.
    """
    names = [c.name for c in campaigns]
    combos = combos.astype({"campaign": object, "reason": object, "group": object})
    used = combos["campaign"].dropna().unique()
    stray = sorted(set(used) - set(names))
    if stray:
        raise InputError(f"The assignment names campaign(s) {', '.join(map(repr, stray))} that "
                         f"are not in the plan ({', '.join(map(repr, names))}).")
    # the label of a combination: the reason, else targets or holdout
    combos["label"] = combos["reason"].where(
        combos["reason"].notna(), combos["group"].map({"target": "targets",
                                                       "holdout": "holdout"}))
    frame = combos.dropna(subset=["campaign"])
    counts = (
        frame.groupby(["campaign", "label"])["n"].sum()
        .unstack("label")
        .reindex(index=pd.Index(names, dtype=object, name="campaign"),
                 columns=list(COUNT_COLUMNS[1:]))
        .fillna(0)
        .astype(np.int64)
    )
    counts.insert(0, "candidates", counts.sum(axis=1))
    counts.columns.name = None
    return counts


# --- helpers ----------------------------------------------------------------------------------


#: Ids turned into Python text at a time to hash them, to bound memory.
_CHUNK_ROWS = 1 << 18


def _chunks(rows: np.ndarray) -> list[np.ndarray]:
    """Split ``rows`` into pieces of at most :data:`_CHUNK_ROWS`."""
    return [rows[i:i + _CHUNK_ROWS] for i in range(0, len(rows), _CHUNK_ROWS)]


def check_unique(campaigns: Sequence[Campaign]) -> None:
    """Refuse a plan that names a campaign twice (names name the export files).

    Raises
    ------
    InputError
        Naming the repeated names.
    """
    names = [c.name for c in campaigns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"Campaign name(s) {', '.join(map(repr, repeated))} appear more than "
                         "once in the plan; names must be unique (they name the export files).")


def _flags(values: Any, index: pd.Index, name: str) -> np.ndarray:
    n = len(index)
    if values is None:
        return np.zeros(n, dtype=bool)
    if isinstance(values, pd.Series):
        if not values.index.equals(index):
            raise InputError(f"The {name!r} parameter is a Series whose index differs from the "
                             "customers' index; align it first (or pass a plain array).")
        values = values.to_numpy(dtype=object)
    array = np.asarray(values)
    if array.shape != (n,):
        raise InputError(f"The {name!r} parameter must hold one flag per customer ({n}). "
                         f"Got shape {array.shape} instead.")
    if array.dtype != bool:
        if not all(isinstance(v, bool | np.bool_) for v in array.tolist()):
            raise InputError(f"The {name!r} parameter must hold booleans (True/False, no "
                             f"missing values). Got dtype {array.dtype} instead.")
        array = array.astype(bool)
    return array


def _bool_column(column: pd.Series, name: str) -> np.ndarray:
    """Read a boolean customer column; missing values count as False."""
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=bool, na_value=False)
    values = column.to_numpy(dtype=object)
    ok = [v is None or v is pd.NA or isinstance(v, bool | np.bool_) or v != v for v in values]
    if not all(ok):
        row = ok.index(False)
        raise DataError("customers", row + 1, name, values[row], "True or False")
    return column.to_numpy(dtype=bool, na_value=False)


def _recently_contacted(ids: pd.Series, camp: np.ndarray, open_rows: np.ndarray,
                        plan: Sequence[Campaign], history: pd.DataFrame,
                        day: date) -> np.ndarray:
    """Rows targeted by the same campaign fewer than its spacing days before ``day``."""
    spacing = np.array([c.min_days_between_contacts or 0 for c in plan] + [0])
    rows = np.flatnonzero(open_rows & (spacing[camp] > 0))
    recent = np.zeros(len(ids), dtype=bool)
    if not len(rows):
        return recent
    past = last_contacts(history, day)
    names = np.array([c.name for c in plan] + [""], dtype=object)
    wanted = pd.DataFrame({"cid": ids.iloc[rows].to_numpy(dtype=object),
                           "campaign": names[camp[rows]]})
    last = wanted.merge(past, on=["cid", "campaign"], how="left")["days"].to_numpy(dtype=float)
    recent[rows] = last < spacing[camp[rows]]
    return recent


def last_contacts(history: pd.DataFrame, as_of: date | str) -> pd.DataFrame:
    """Days since each customer's last contact by each campaign, before ``as_of``.

    The contact-spacing rule of :func:`assign_campaigns` (step 5) compares these days with
    the campaign's ``min_days_between_contacts``. History rows dated ``as_of`` or later are
    ignored, so a rerun of a run already recorded gives the same result.

    Parameters
    ----------
    history : DataFrame
        Target rows of earlier runs: ``customer_id``, ``campaign``, ``as_of`` (date or ISO
        string).
    as_of : date or str
        The run date.

    Returns
    -------
    DataFrame
        ``cid`` (text), ``campaign`` (text), ``days`` (int, >= 1): one row per customer and
        campaign contacted before ``as_of``.

    Raises
    ------
    MissingColumnsError
        When a column is absent.
    DataError
        When a date cannot be read.

    Examples
    --------
    >>> history = pd.DataFrame({"customer_id": ["a", "a", "b"],
    ...                         "campaign": ["winback"] * 3,
    ...                         "as_of": ["2024-02-01", "2024-02-20", "2024-03-01"]})
    >>> last_contacts(history, "2024-03-01")
      cid campaign  days
    0   a  winback    10
    """
    day = as_date(as_of, "as_of")
    require_columns(history, ["customer_id", "campaign", "as_of"], "contact_history")
    try:
        dates = pd.to_datetime(history["as_of"], format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataError("contact_history", None, "as_of", str(exc), "dates (YYYY-MM-DD)") from None
    days = (pd.Timestamp(day) - dates.dt.tz_localize(None).dt.normalize()).dt.days
    past = pd.DataFrame({
        "cid": id_array(history["customer_id"], source="contact_history"),
        "campaign": history["campaign"].astype(str).to_numpy(dtype=object),
        "days": days.to_numpy(),
    })
    return past[past["days"] >= 1].groupby(["cid", "campaign"], as_index=False)["days"].min()
