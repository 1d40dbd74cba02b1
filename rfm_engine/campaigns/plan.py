"""The campaign plan: what each campaign targets, through which channel, with what control group.

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


:func:`load_campaigns` reads the ``[[campaigns]]`` tables of a config and :func:`check_plan` warns
about a plan that does not fit the rule set. Who joins which campaign is decided by
:mod:`rfm_engine.campaigns.assign`; cross-sell and up-sell suggestions live in
:mod:`rfm_engine.campaigns.suggestions`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError
from ..io._validation import is_int

__all__ = [
    "CAMPAIGN_TYPES",
    "CHANNELS",
    "DEFAULT_PLAN",
    "EXCLUSION_REASONS",
    "Campaign",
    "check_plan",
    "load_campaigns",
    "segment_owner",
]

#: Allowed values of :attr:`Campaign.type`.
CAMPAIGN_TYPES: tuple[str, ...] = ("activation", "retention", "resurrection")
#: Allowed values of :attr:`Campaign.channel`.
CHANNELS: tuple[str, ...] = ("email", "push", "sms")
#: Values of the ``exclusion_reason`` column of
#: :func:`~rfm_engine.campaigns.assign.assign_campaigns` (besides NA), in the order the rules
#: apply.
EXCLUSION_REASONS: tuple[str, ...] = (
    "suppressed", "no_consent", "no_email", "invalid_email", "quarantined", "contacted_recently",
    "duplicate_email", "over_cap",
)

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
    owner = segment_owner(campaigns)
    for segment, position in owner.items():
        claims = [c for c in campaigns if segment in c.segments]
        if len(claims) > 1:
            listed = ", ".join(f"{c.name!r} (priority {c.priority})" for c in claims)
            warnings.append(f"segment {segment!r} is claimed by campaigns {listed}; "
                            f"{campaigns[position].name!r} wins by priority.")
    return warnings


def segment_owner(campaigns: Sequence[Campaign]) -> dict[str, int]:
    """Return segment -> position of the campaign that wins it (priority, then plan order).

    Examples
    --------
    >>> segment_owner((Campaign("a", "retention", ("x", "y")),
    ...                Campaign("b", "retention", ("y",), priority=5)))
    {'x': 0, 'y': 1}
    """
    owner: dict[str, int] = {}
    for position, campaign in enumerate(campaigns):
        for segment in campaign.segments:
            current = owner.get(segment)
            if current is None or campaign.priority > campaigns[current].priority:
                owner[segment] = position
    return owner
