r"""Campaigns: segments to target lists, with suppression, exclusions, holdouts and caps.

A campaign is configuration (a ``[[campaigns]]`` table in the run config)::

    [[campaigns]]
    name = "resurrection_cant_lose"   # slug [a-z0-9_-]+, names the export file
    type = "resurrection"             # activation | retention | resurrection
    segments = ["cant_lose"]          # segment names of the rule set
    channel = "email"                 # email | push | sms
    priority = 100                    # a customer claimed by several campaigns joins the highest
    holdout_fraction = 0.1            # share kept out as a control group, in [0, 0.9]
    max_size = 5000                   # optional cap on targets per run
    min_days_between_contacts = 14    # optional spacing between two contacts of a customer
    description = "Win back high-value customers before they are lost."

:func:`assign_campaigns` gives each customer at most one campaign and one ``group``:
``target`` (exported), ``holdout`` (recorded, never exported), ``suppressed``, ``excluded``
(with an ``exclusion_reason``) or ``none`` (no campaign claims the customer's segment).
:func:`campaign_counts` counts every step per campaign for the manifest.

The default plan
----------------
:data:`DEFAULT_PLAN` covers the ten segments of the default ``rf-grid`` rule set, each exactly
once, with the three CRM components (every campaign is an email campaign with a 10% holdout
and no cap; the spacing applies only when a contact history is given)::

    ==========================  ============  ==============================  ========  =======
    campaign                    type          segments                        priority  spacing
    ==========================  ============  ==============================  ========  =======
    resurrection_cant_lose      resurrection  cant_lose                       100       14
    resurrection_at_risk        resurrection  at_risk                         90        14
    retention_reward_champions  retention     champions                       80        28
    retention_loyal             retention     loyal_customers                 70        28
    activation_third_order      activation    potential_loyalists             60        14
    activation_second_order     activation    new_customers, promising        50        14
    retention_nudge             retention     need_attention, about_to_sleep  40        14
    resurrection_winback        resurrection  hibernating                     10        28
    ==========================  ============  ==============================  ========  =======

The priorities rank value at stake: lapsing high-value customers (``cant_lose``, ``at_risk``)
first, then the best current customers, then customers one or two orders away from becoming
regulars, then the low-value dormant ones. They only matter when a custom plan or rule set makes
campaigns share a segment; the spacing (``min_days_between_contacts``, "spacing" above) keeps a
weekly job from mailing the same customer every week.

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

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from hashlib import sha256
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, InputError
from ..io._validation import as_date, is_int, require_columns

__all__ = [
    "CAMPAIGN_TYPES",
    "CHANNELS",
    "COUNT_COLUMNS",
    "DEFAULT_PLAN",
    "EXCLUSION_REASONS",
    "GROUPS",
    "Campaign",
    "assign_campaigns",
    "id_array",
    "numeric_column",
    "campaign_counts",
    "check_plan",
    "holdout_draw",
    "load_campaigns",
]

#: Allowed values of :attr:`Campaign.type`.
CAMPAIGN_TYPES: tuple[str, ...] = ("activation", "retention", "resurrection")
#: Allowed values of :attr:`Campaign.channel`.
CHANNELS: tuple[str, ...] = ("email", "push", "sms")
#: Values of the ``group`` column of :func:`assign_campaigns`.
GROUPS: tuple[str, ...] = ("target", "holdout", "suppressed", "excluded", "none")
#: Values of the ``exclusion_reason`` column of :func:`assign_campaigns` (besides NA), in the
#: order the rules apply.
EXCLUSION_REASONS: tuple[str, ...] = (
    "suppressed", "no_consent", "no_email", "invalid_email", "quarantined", "contacted_recently",
    "duplicate_email", "over_cap",
)
#: Columns of :func:`campaign_counts`, in order.
COUNT_COLUMNS: tuple[str, ...] = ("candidates", *EXCLUSION_REASONS, "holdout", "targets")

_NAME = re.compile(r"[a-z0-9_-]+")
_MAX_HOLDOUT = 0.9
_REQUIRED_KEYS = ("name", "type", "segments")


@dataclass(frozen=True)
class Campaign:
    """One campaign of a plan: which segments it targets, how, and with what control group.

    Parameters
    ----------
    name : str
        Slug (``[a-z0-9_-]+``); names the export file, so it must be unique in a plan.
    type : {"activation", "retention", "resurrection"}
        The CRM component the campaign serves.
    segments : tuple of str
        Segment names (of the rule set) whose customers the campaign claims. A list is
        accepted and stored as a tuple.
    channel : {"email", "push", "sms"}, default="email"
        Email campaigns also exclude customers without a valid address.
    priority : int, default=0
        When several campaigns claim a customer's segment, the highest priority wins (ties: the
        campaign earlier in the plan).
    holdout_fraction : float, default=0.1
        Share of eligible customers kept out as a control group, in [0, 0.9].
    max_size : int or None, default=None
        At most this many targets per run (the highest spenders), or no cap.
    min_days_between_contacts : int or None, default=None
        A customer targeted by this campaign fewer than this many days before the run is
        excluded (needs a contact history), or no spacing.
    description : str, default=""
        What the campaign is for.

    Examples
    --------
    >>> Campaign("retention_loyal", "retention", ["loyal_customers"], priority=70)
    ... # doctest: +NORMALIZE_WHITESPACE
    Campaign(name='retention_loyal', type='retention', segments=('loyal_customers',),
             channel='email', priority=70, holdout_fraction=0.1, max_size=None,
             min_days_between_contacts=None, description='')
    >>> Campaign("Loyal!", "retention", ["loyal_customers"])
    Traceback (most recent call last):
    ...
    rfm_engine.errors.ConfigError: campaign 'Loyal!': 'name' must be a slug of a-z, 0-9, '_' \
and '-' (it names the export file). Got 'Loyal!' instead.
    """

    name: str
    type: str
    segments: tuple[str, ...]
    channel: str = "email"
    priority: int = 0
    holdout_fraction: float = 0.10
    max_size: int | None = None
    min_days_between_contacts: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        def fail(key: str, expected: str, value: object) -> None:
            raise ConfigError(
                f"campaign {self.name!r}: {key!r} must be {expected}. Got {value!r} instead."
            )

        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            fail("name", "a slug of a-z, 0-9, '_' and '-' (it names the export file)", self.name)
        if self.type not in CAMPAIGN_TYPES:
            fail("type", f"one of {', '.join(map(repr, CAMPAIGN_TYPES))}", self.type)
        segments = self.segments
        if (
            not isinstance(segments, list | tuple)
            or not segments
            or not all(isinstance(s, str) and s for s in segments)
        ):
            fail("segments", "a non-empty list of segment names", segments)
        if len(set(segments)) != len(segments):
            fail("segments", "a list without repeated names", segments)
        object.__setattr__(self, "segments", tuple(segments))
        if self.channel not in CHANNELS:
            fail("channel", f"one of {', '.join(map(repr, CHANNELS))}", self.channel)
        if not is_int(self.priority):
            fail("priority", "an int", self.priority)
        fraction = self.holdout_fraction
        if not (is_int(fraction) or isinstance(fraction, float)) or not (
            0 <= fraction <= _MAX_HOLDOUT
        ):
            fail("holdout_fraction", f"a number in [0, {_MAX_HOLDOUT}]", fraction)
        object.__setattr__(self, "holdout_fraction", float(fraction))
        if self.max_size is not None and not (is_int(self.max_size) and self.max_size >= 1):
            fail("max_size", "an int >= 1 (leave it out for no cap)", self.max_size)
        spacing = self.min_days_between_contacts
        if spacing is not None and not (is_int(spacing) and spacing >= 1):
            fail("min_days_between_contacts", "an int >= 1 (leave it out for no spacing)",
                 spacing)
        if not isinstance(self.description, str):
            fail("description", "a string", self.description)


#: The default campaign plan over the ``rf-grid`` segments (see the module docs for the table).
DEFAULT_PLAN: tuple[Campaign, ...] = (
    Campaign(
        "resurrection_cant_lose", "resurrection", ("cant_lose",), priority=100,
        min_days_between_contacts=14,
        description="Win back the most frequent buyers, who have lapsed: the biggest value "
                    "at stake (personal offer, best incentive).",
    ),
    Campaign(
        "resurrection_at_risk", "resurrection", ("at_risk",), priority=90,
        min_days_between_contacts=14,
        description="Win back frequent buyers who have lapsed, before they are lost.",
    ),
    Campaign(
        "retention_reward_champions", "retention", ("champions",), priority=80,
        min_days_between_contacts=28,
        description="Reward the best customers (early access, loyalty perks) and ask for "
                    "referrals and reviews.",
    ),
    Campaign(
        "retention_loyal", "retention", ("loyal_customers",), priority=70,
        min_days_between_contacts=28,
        description="Keep regular buyers engaged: loyalty programme, up-sell, new arrivals.",
    ),
    Campaign(
        "activation_third_order", "activation", ("potential_loyalists",), priority=60,
        min_days_between_contacts=14,
        description="Turn recent two- and three-order customers into regulars: win the next "
                    "order (membership, recommendations).",
    ),
    Campaign(
        "activation_second_order", "activation", ("new_customers", "promising"), priority=50,
        min_days_between_contacts=14,
        description="Win the second order of recent one-off buyers (onboarding, "
                    "cross-sell, a first-repeat incentive).",
    ),
    Campaign(
        "retention_nudge", "retention", ("need_attention", "about_to_sleep"), priority=40,
        min_days_between_contacts=14,
        description="Reactivate middling customers who are cooling down (limited-time "
                    "offer, popular products).",
    ),
    Campaign(
        "resurrection_winback", "resurrection", ("hibernating",), priority=10,
        min_days_between_contacts=28,
        description="Low-cost win-back of long-dormant, infrequent buyers.",
    ),
)


def load_campaigns(items: list[dict[str, Any]], *, source: str) -> tuple[Campaign, ...]:
    """Parse the ``[[campaigns]]`` tables of a config file.

    Parameters
    ----------
    items : list of dict
        The tables, as :mod:`tomllib` reads them.
    source : str
        The config file, named in every error.

    Returns
    -------
    tuple of Campaign
        In config order.

    Raises
    ------
    ConfigError
        When an entry is not a table, lacks ``name``, ``type`` or ``segments``, has an unknown
        key or an invalid value, or when two campaigns share a name. The message names the
        file, the campaign and the key.

    Examples
    --------
    >>> plan = load_campaigns([{"name": "winback", "type": "resurrection",
    ...                         "segments": ["at_risk", "cant_lose"], "priority": 5}],
    ...                       source="run.toml")
    >>> plan[0].segments, plan[0].holdout_fraction
    (('at_risk', 'cant_lose'), 0.1)
    >>> load_campaigns([{"name": "winback", "type": "resurrection", "segments": ["at_risk"],
    ...                  "holdout": 0.2}], source="run.toml")
    Traceback (most recent call last):
    ...
    rfm_engine.errors.ConfigError: run.toml: campaign 'winback': unknown key(s) 'holdout'; \
allowed: channel, description, holdout_fraction, max_size, min_days_between_contacts, name, \
priority, segments, type.
    """
    if not isinstance(items, list):
        raise ConfigError(f"{source}: 'campaigns' must be an array of tables ([[campaigns]]). "
                          f"Got {type(items).__name__} instead.")
    allowed = sorted(f.name for f in fields(Campaign))
    campaigns: list[Campaign] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(items, start=1):
        where = f"{source}: [[campaigns]] entry {number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table. Got {type(item).__name__} instead.")
        if "name" in item:
            where = f"{source}: campaign {item['name']!r}"
        missing = [key for key in _REQUIRED_KEYS if key not in item]
        if missing:
            raise ConfigError(f"{where}: missing key(s) {', '.join(map(repr, missing))}; "
                              f"required: {', '.join(_REQUIRED_KEYS)}.")
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"allowed: {', '.join(allowed)}.")
        try:
            campaign = Campaign(**item)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        if campaign.name in seen:
            raise ConfigError(
                f"{where}: defined twice ([[campaigns]] entries {seen[campaign.name]} and "
                f"{number}); campaign names must be unique (they name the export files)."
            )
        seen[campaign.name] = number
        campaigns.append(campaign)
    return tuple(campaigns)


def check_plan(campaigns: Sequence[Campaign], segments: Sequence[str]) -> list[str]:
    """Warnings about a campaign plan against the segments of a rule set.

    Parameters
    ----------
    campaigns : sequence of Campaign
        The plan.
    segments : sequence of str
        The segment names the rule set can produce.

    Returns
    -------
    list of str
        One message per segment a campaign names that the rule set does not define, and one per
        segment claimed by several campaigns (saying which campaign wins by priority). Empty
        when the plan is clean.

    Examples
    --------
    >>> plan = (Campaign("a", "retention", ("champions", "vip")),
    ...         Campaign("b", "retention", ("champions",), priority=9))
    >>> for warning in check_plan(plan, ["champions", "loyal_customers"]):
    ...     print(warning)
    campaign 'a' names segment 'vip', which the rule set does not define; known: 'champions', \
'loyal_customers'.
    segment 'champions' is claimed by campaigns 'a' (priority 0), 'b' (priority 9); 'b' wins \
by priority.
    >>> check_plan(DEFAULT_PLAN, ["champions", "loyal_customers", "potential_loyalists",
    ...     "new_customers", "promising", "need_attention", "about_to_sleep", "at_risk",
    ...     "cant_lose", "hibernating"])
    []
    """
    known = set(segments)
    warnings = []
    for campaign in campaigns:
        for segment in campaign.segments:
            if segment not in known:
                warnings.append(
                    f"campaign {campaign.name!r} names segment {segment!r}, which the rule set "
                    f"does not define; known: {', '.join(map(repr, segments))}."
                )
    owner = _segment_owner(campaigns)
    for segment, position in owner.items():
        claims = [c for c in campaigns if segment in c.segments]
        if len(claims) > 1:
            listed = ", ".join(f"{c.name!r} (priority {c.priority})" for c in claims)
            warnings.append(f"segment {segment!r} is claimed by campaigns {listed}; "
                            f"{campaigns[position].name!r} wins by priority.")
    return warnings


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
    ids = _id_strings(customer_ids, source="customer_ids")
    return _draws(ids, campaign, as_date(as_of, "as_of"))


def _draws(ids: Sequence[str], campaign: str, day: date) -> np.ndarray:
    """Hash already-validated id strings (see :func:`holdout_draw`)."""
    suffix = f"\x1f{campaign}\x1f{day.isoformat()}".encode()
    digest = b"".join([sha256(cid.encode() + suffix).digest()[:8] for cid in ids])
    words = np.frombuffer(digest, dtype=">u8").astype(np.uint64)
    return (words >> np.uint64(11)).astype(np.float64) * 2.0**-53


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
        excluded) and ``holdout_draw`` (NaN when no campaign). ``customers`` is not modified.

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
    _check_unique(plan)
    day = as_date(as_of, "as_of")
    needed = ["customer_id", "segment"]
    if any(c.channel == "email" for c in plan):
        needed.append("email")
    if any(c.max_size is not None for c in plan):
        needed.append("monetary")
    require_columns(customers, needed, "customers")
    n = len(customers)
    index = customers.index
    ids = id_array(customers["customer_id"], "customers")
    suppressed_flags = _flags(suppressed, index, "suppressed")
    quarantined_flags = _flags(quarantined, index, "quarantined")
    no_consent_flags = _flags(no_consent, index, "no_consent")

    # 1. candidates: one campaign per customer, by priority
    owner = _segment_owner(plan)
    keys = list(owner)
    hit = pd.Index(keys, dtype=object).get_indexer(
        customers["segment"].to_numpy(dtype=object, na_value=None)
    )
    owners = np.array([owner[k] for k in keys] + [-1], dtype=np.int64)
    camp = owners[hit]  # -1 (no match) picks the trailing -1
    cand = camp >= 0

    draws = np.full(n, np.nan)
    for j, campaign in enumerate(plan):
        rows = np.flatnonzero(camp == j)
        if len(rows):
            draws[rows] = _draws(ids[rows].tolist(), campaign.name, day)

    reason = np.full(n, None, dtype=object)
    open_ = cand.copy()  # candidates no rule has decided yet

    def exclude(mask: np.ndarray, why: str) -> None:
        decided = mask & open_
        reason[decided] = why
        open_[decided] = False

    # 2. suppression, every channel
    exclude(suppressed_flags, "suppressed")
    # 2b. consent, email campaigns only
    is_email = np.array([c.channel == "email" for c in plan] + [False])[camp]
    exclude(is_email & no_consent_flags, "no_consent")
    # 3. email address, email campaigns only
    if is_email.any():
        email = customers["email"]
        blank = email.isna().to_numpy() | (
            email.astype(object).where(email.notna(), "").astype(str).str.strip() == ""
        ).to_numpy()
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
    group = np.full(n, "none", dtype=object)
    group[cand] = "excluded"
    group[reason == "suppressed"] = "suppressed"
    eligible = open_
    fraction = np.array([c.holdout_fraction for c in plan] + [0.0])[camp]
    group[eligible] = np.where(draws[eligible] < fraction[eligible], "holdout", "target")

    # 7. cap, walking down by value so the holdout spans the targets' range
    capped = [j for j, c in enumerate(plan) if c.max_size is not None]
    if capped:
        monetary = numeric_column(customers["monetary"], "monetary", "customers")
        id_rank = pd.factorize(ids, sort=True)[0]
        for j in capped:
            rows = np.flatnonzero(eligible & (camp == j))
            rows = rows[np.lexsort((id_rank[rows], -monetary[rows]))]
            is_target = group[rows] == "target"
            before = np.cumsum(is_target) - is_target
            cut = rows[before >= plan[j].max_size]
            group[cut] = "excluded"
            reason[cut] = "over_cap"

    def column(values: list[str]) -> np.ndarray:
        return np.array([*values, None], dtype=object)[camp]

    return pd.DataFrame(
        {
            "campaign": pd.array(column([c.name for c in plan]), dtype="str"),
            "campaign_type": pd.array(column([c.type for c in plan]), dtype="str"),
            "channel": pd.array(column([c.channel for c in plan]), dtype="str"),
            "group": pd.array(group, dtype="str"),
            "exclusion_reason": pd.array(reason, dtype="str"),
            "holdout_draw": draws,
        },
        index=index,
    )


def _duplicate_emails(customers: pd.DataFrame, ids: np.ndarray, camp: np.ndarray,
                      rows: np.ndarray) -> np.ndarray:
    """Flag all but the most valuable customer sharing an email within one campaign."""
    positions = np.flatnonzero(rows)
    value = (numeric_column(customers["monetary"], "monetary", "customers")[positions]
             if "monetary" in customers else np.zeros(len(positions)))
    frame = pd.DataFrame({
        "pos": positions, "camp": camp[positions], "value": -value, "id": ids[positions],
        "email": customers["email"].to_numpy(dtype=object)[positions],
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
    names = [c.name for c in campaigns]
    used = assignment["campaign"].dropna().unique()
    stray = sorted(set(used) - set(names))
    if stray:
        raise InputError(f"The assignment names campaign(s) {', '.join(map(repr, stray))} that "
                         f"are not in the plan ({', '.join(map(repr, names))}).")
    labels = assignment["exclusion_reason"].astype(object).where(
        assignment["exclusion_reason"].notna(),
        assignment["group"].astype(object).map({"target": "targets", "holdout": "holdout"}),
    )
    frame = pd.DataFrame({"campaign": assignment["campaign"].astype(object),
                          "label": labels}).dropna(subset=["campaign"])
    counts = (
        frame.groupby(["campaign", "label"]).size()
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


def _segment_owner(campaigns: Sequence[Campaign]) -> dict[str, int]:
    """Segment -> position of the campaign that wins it (priority, then plan order)."""
    owner: dict[str, int] = {}
    for position, campaign in enumerate(campaigns):
        for segment in campaign.segments:
            current = owner.get(segment)
            if current is None or campaign.priority > campaigns[current].priority:
                owner[segment] = position
    return owner


def _check_unique(campaigns: Sequence[Campaign]) -> None:
    names = [c.name for c in campaigns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"Campaign name(s) {', '.join(map(repr, repeated))} appear more than "
                         "once in the plan; names must be unique (they name the export files).")


def _id_strings(values: pd.Series | Sequence[Any], *, source: str) -> list[str]:
    items = values.tolist() if isinstance(values, pd.Series) else list(values)
    missing = pd.isna(np.array(items, dtype=object))
    if missing.any():
        row = int(np.flatnonzero(missing)[0]) + 1
        raise DataError(source, row, "customer_id", None, "a customer id")
    return [v if isinstance(v, str) else str(v) for v in items]


def id_array(values: pd.Series | Sequence[Any], source: str) -> np.ndarray:
    """Return the ids as an object array (so an empty frame still merges with text keys)."""
    return np.array(_id_strings(values, source=source), dtype=object)


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


def numeric_column(column: pd.Series, name: str, source: str) -> np.ndarray:
    """Return a numeric column as floats; a text or boolean column is a DataError."""
    if len(column) and (not pd.api.types.is_numeric_dtype(column)
                        or pd.api.types.is_bool_dtype(column)):
        raise DataError(source, None, name, str(column.dtype), "numbers")
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _recently_contacted(ids: np.ndarray, camp: np.ndarray, open_rows: np.ndarray,
                        plan: Sequence[Campaign], history: pd.DataFrame,
                        day: date) -> np.ndarray:
    """Rows targeted by the same campaign fewer than its spacing days before ``day``."""
    spacing = np.array([c.min_days_between_contacts or 0 for c in plan] + [0])
    rows = np.flatnonzero(open_rows & (spacing[camp] > 0))
    recent = np.zeros(len(ids), dtype=bool)
    if not len(rows):
        return recent
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
    past = past[past["days"] >= 1].groupby(["cid", "campaign"], as_index=False)["days"].min()
    names = np.array([c.name for c in plan] + [""], dtype=object)
    wanted = pd.DataFrame({"cid": ids[rows], "campaign": names[camp[rows]]})
    last = wanted.merge(past, on=["cid", "campaign"], how="left")["days"].to_numpy(dtype=float)
    recent[rows] = last < spacing[camp[rows]]
    return recent
