"""KPIs of the optional CRM inputs: CAC, NPS, CSAT, CES, support, leads, renewals, email.

The inputs are read and validated by :mod:`rfm_engine.io.crm_inputs`; the functions here
compute the KPIs the KPI report shows beside the transaction KPIs
(:mod:`rfm_engine.measurement.kpis`).

KPI definitions
---------------
Each KPI takes the validated table (an :class:`InputTable`, or a DataFrame, which is then
validated with :func:`read_input`) and returns a DataFrame: one row, or one row per period
(first column ``period``) when ``period`` is ``"D"``, ``"W"``, ``"M"``, ``"Q"`` or ``"Y"``.
Periods without rows are absent. Rates are fractions in [0, 1] and NaN when their
denominator is 0; NPS is in points from -100 to 100.

- :func:`cac`: costs / new customers, per ``period`` of the costs (NaN when 0 new);
  :func:`clv_to_cac`: CLV / CAC (NaN when CAC is 0 or missing).
- :func:`nps`: % promoters (9-10) - % detractors (0-6); :func:`csat`: mean of 1-5 and share
  of 4-5; :func:`ces`: mean of 1-7 (7 = easiest); per period of ``date``.
- :func:`first_contact_resolution`: tickets resolved at the first contact / resolved
  tickets, per period of ``opened_at``.
- :func:`lead_conversion`: won / leads created, per period of ``created_at``;
  :func:`sales_cycle`: days from ``created_at`` to ``won_at`` (mean, median), per period
  of ``won_at``.
- :func:`renewal_rate`: renewed / (renewed + not renewed) terms, unknown outcomes
  excluded, per period of ``period_end``.
- :func:`email_rates`: per campaign, unique recipients per event type; delivery and
  bounce rates over sent, the other rates over delivered.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io._validation import require_columns
from ..io.crm_inputs import (
    EMAIL_EVENTS,
    InputTable,
    read_input,
    read_periods,
)

__all__ = [
    "EMAIL_RATE_COLUMNS",
    "PERIODS",
    "cac",
    "ces",
    "clv_to_cac",
    "csat",
    "email_rates",
    "first_contact_resolution",
    "lead_conversion",
    "nps",
    "renewal_rate",
    "sales_cycle",
]

#: Allowed values of the ``period`` parameter of the KPI functions (pandas period aliases:
#: day, week ending Sunday, month, quarter, calendar year).
PERIODS: tuple[str, ...] = ("D", "W", "M", "Q", "Y")


def _table(kind: str, data: InputTable | pd.DataFrame, name: str) -> pd.DataFrame:
    if isinstance(data, InputTable):
        if data.kind != kind:
            raise ConfigError(f"{name} needs the {kind!r} input. Got a {data.kind!r} table.")
        return data.frame
    if isinstance(data, pd.DataFrame):
        return read_input(kind, data).frame
    raise ConfigError(f"{name} needs a DataFrame or an InputTable of {kind!r}. "
                      f"Got {type(data).__name__} instead.")


def _freq(period: str | None, name: str) -> str | None:
    if period is not None and period not in PERIODS:
        raise ConfigError(f"The 'period' parameter of {name} must be None or one of "
                          f"{', '.join(map(repr, PERIODS))}. Got {period!r} instead.")
    return period


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def _per_period(frame: pd.DataFrame, date_column: str, period: str | None, name: str,
                summarise: Callable[[pd.DataFrame], dict[str, float]]) -> pd.DataFrame:
    freq = _freq(period, name)
    columns = list(summarise(frame.iloc[:0]))
    if freq is None:
        return pd.DataFrame([summarise(frame)], columns=columns)
    keys = frame[date_column].dt.to_period(freq)
    rows = [{"period": key, **summarise(part)}
            for key, part in frame.groupby(keys, sort=True, observed=True)]
    out = pd.DataFrame(rows, columns=["period", *columns])
    out["period"] = out["period"].astype(pd.PeriodDtype(freq))
    empty = summarise(frame.iloc[:0])
    return out.astype({c: type(v) for c, v in empty.items() if isinstance(v, int)})


def _to_freq(index: pd.PeriodIndex, freq: str, what: str) -> pd.PeriodIndex:
    """Map each period to the ``freq`` period holding it; refuse a period that spans two."""
    start = index.start_time.to_period(freq)
    end = index.end_time.to_period(freq)
    if (start != end).any():
        raise ConfigError(f"{what} has periods of frequency {index.freqstr} that do not fit "
                          f"in one period of frequency {freq}: use a coarser 'period'.")
    return start


def cac(
    costs: InputTable | pd.DataFrame,
    new_customers: pd.Series,
    *,
    period: str | None = None,
) -> pd.DataFrame:
    """Compute the customer acquisition cost per period: costs / new customers.

    Costs of all channels of a period are summed. ``new_customers`` (for example the count
    of customers whose first purchase falls in each month) is aligned on the cost periods; a
    cost period it lacks has 0 new customers. Only periods present in ``costs`` are listed.

    Parameters
    ----------
    costs : InputTable or DataFrame
        The ``costs`` input.
    new_customers : pandas.Series
        New customers indexed by period: pandas Periods, ``'YYYY-MM'``, ``'YYYY-Qn'`` or
        dates.
    period : {None, "D", "W", "M", "Q", "Y"}, default=None
        Aggregate both to this frequency first (finer periods only roll up: a month fits in
        its quarter, a quarter does not fit in a month). None: the frequency of ``costs``.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``costs``, ``new_customers``, ``cac`` (NaN when there are no new
        customers).

    Examples
    --------
    >>> import pandas as pd
    >>> costs = pd.DataFrame({"period": ["2024-01", "2024-01", "2024-02", "2024-03"],
    ...                       "channel": ["search", "social", "search", "search"],
    ...                       "costs": [600.0, 400.0, 900.0, 50.0]})
    >>> new = pd.Series({"2024-01": 40, "2024-02": 30})
    >>> cac(costs, new)
        period   costs  new_customers   cac
    0  2024-01  1000.0             40  25.0
    1  2024-02   900.0             30  30.0
    2  2024-03    50.0              0   NaN
    >>> cac(costs, new, period="Q")
       period   costs  new_customers        cac
    0  2024Q1  1950.0             70  27.857143
    """
    frame = _table("costs", costs, "cac")
    freq = _freq(period, "cac")
    if not isinstance(new_customers, pd.Series):
        raise ConfigError("The 'new_customers' parameter of cac must be a pandas Series indexed "
                          f"by period. Got {type(new_customers).__name__} instead.")
    cost_periods = pd.PeriodIndex(frame["period"])
    new_index = read_periods(new_customers.index, "new_customers")
    if freq is None:
        freq = cost_periods.freqstr if len(cost_periods) else "M"
    cost_periods = _to_freq(cost_periods, freq, "costs")
    new_index = _to_freq(new_index, freq, "new_customers")
    spend = frame["costs"].groupby(cost_periods, sort=True).sum()
    counts = pd.Series(pd.to_numeric(new_customers).to_numpy(), index=new_index)
    counts = counts.groupby(level=0).sum().reindex(spend.index, fill_value=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(counts.to_numpy() > 0, spend.to_numpy() / counts.to_numpy(), np.nan)
    return pd.DataFrame({
        "period": pd.Series(spend.index, dtype=pd.PeriodDtype(freq)),
        "costs": spend.to_numpy(dtype=float),
        "new_customers": counts.to_numpy(),
        "cac": ratio,
    })


def clv_to_cac(
    clv: float | pd.Series, cac: float | pd.Series | pd.DataFrame
) -> float | pd.Series:
    """Ratio of customer lifetime value to acquisition cost (3 or more is the usual goal).

    Parameters
    ----------
    clv : float or pandas.Series
        Lifetime value per customer (one value, or per period / segment).
    cac : float, pandas.Series or pandas.DataFrame
        Acquisition cost: a number, a Series aligned with ``clv``, or the frame of
        :func:`cac` (its ``cac`` column indexed by ``period``).

    Returns
    -------
    float or pandas.Series
        ``clv / cac``; NaN where CAC is 0, negative or missing.

    Examples
    --------
    >>> clv_to_cac(90.0, 30.0)
    3.0
    >>> import pandas as pd
    >>> clv_to_cac(pd.Series({"a": 60.0, "b": 50.0}), pd.Series({"a": 20.0, "b": 0.0}))
    a    3.0
    b    NaN
    Name: clv_to_cac, dtype: float64
    """
    if isinstance(cac, pd.DataFrame):
        require_columns(cac, ("period", "cac"), "cac table")
        cac = pd.Series(cac["cac"].to_numpy(), index=pd.Index(cac["period"]))
    if isinstance(clv, pd.Series) or isinstance(cac, pd.Series):
        cost = cac.where(cac > 0) if isinstance(cac, pd.Series) else (
            cac if cac > 0 else math.nan)
        ratio = clv / cost
        return ratio.astype(float).rename("clv_to_cac")
    return float(clv) / float(cac) if cac > 0 else math.nan


def _scores(responses: InputTable | pd.DataFrame, survey: str, name: str) -> pd.DataFrame:
    frame = _table("surveys", responses, name)
    return frame[frame["survey"] == survey]


def nps(responses: InputTable | pd.DataFrame, period: str | None = None) -> pd.DataFrame:
    """Net Promoter Score: % promoters (9-10) minus % detractors (0-6) of NPS answers.

    Parameters
    ----------
    responses : InputTable or DataFrame
        The ``surveys`` input; only ``survey == "nps"`` rows count.
    period : {None, "D", "W", "M", "Q", "Y"}, default=None
        Per period of ``date``, or overall.

    Returns
    -------
    pandas.DataFrame
        [``period``,] ``n``, ``promoters``, ``passives`` (7-8), ``detractors``, ``nps``
        (points, -100 to 100; NaN without answers).

    Examples
    --------
    >>> import pandas as pd
    >>> scores = [10, 9, 9, 10, 9, 8, 7, 7, 3, 6]
    >>> answers = pd.DataFrame({"response_id": [str(i) for i in range(10)],
    ...                         "date": ["2024-01-15"] * 6 + ["2024-02-03"] * 4,
    ...                         "survey": "nps", "score": scores})
    >>> nps(answers)
        n  promoters  passives  detractors   nps
    0  10          5         3           2  30.0
    >>> nps(answers, period="M")
        period  n  promoters  passives  detractors        nps
    0  2024-01  6          5         1           0  83.333333
    1  2024-02  4          0         2           2 -50.000000
    """
    def summarise(part: pd.DataFrame) -> dict[str, float]:
        score = part["score"]
        n, promoters, detractors = len(part), int((score >= 9).sum()), int((score <= 6).sum())
        return {"n": n, "promoters": promoters, "passives": n - promoters - detractors,
                "detractors": detractors, "nps": 100.0 * _ratio(promoters - detractors, n)}

    return _per_period(_scores(responses, "nps", "nps"), "date", period, "nps", summarise)


def csat(responses: InputTable | pd.DataFrame, period: str | None = None) -> pd.DataFrame:
    """Measure satisfaction: mean CSAT answer (1-5) and share of satisfied answers (4-5).

    Parameters
    ----------
    responses : InputTable or DataFrame
        The ``surveys`` input; only ``survey == "csat"`` rows count.
    period : {None, "D", "W", "M", "Q", "Y"}, default=None
        Per period of ``date``, or overall.

    Returns
    -------
    pandas.DataFrame
        [``period``,] ``n``, ``satisfied`` (answers 4-5), ``csat_mean``, ``csat_share``
        (satisfied / n).

    Examples
    --------
    >>> import pandas as pd
    >>> answers = pd.DataFrame({"response_id": ["a", "b", "c", "d"],
    ...                         "date": "2024-03-01", "survey": "csat",
    ...                         "score": [5, 4, 2, 3]})
    >>> csat(answers)
       n  satisfied  csat_mean  csat_share
    0  4          2        3.5         0.5
    """
    def summarise(part: pd.DataFrame) -> dict[str, float]:
        score = part["score"].astype(float)
        n, satisfied = len(part), int((score >= 4).sum())
        return {"n": n, "satisfied": satisfied,
                "csat_mean": float(score.mean()) if n else math.nan,
                "csat_share": _ratio(satisfied, n)}

    return _per_period(_scores(responses, "csat", "csat"), "date", period, "csat", summarise)


def ces(responses: InputTable | pd.DataFrame, period: str | None = None) -> pd.DataFrame:
    """Measure customer effort: mean CES answer on the 1-7 scale (7 = easiest).

    The scale is CES 2.0's agreement with "The company made it easy for me to handle my
    issue", 1 (strongly disagree) to 7 (strongly agree), so higher is better
    (:data:`rfm_engine.io.crm_inputs.SURVEY_SCALES`).

    Parameters
    ----------
    responses : InputTable or DataFrame
        The ``surveys`` input; only ``survey == "ces"`` rows count.
    period : {None, "D", "W", "M", "Q", "Y"}, default=None
        Per period of ``date``, or overall.

    Returns
    -------
    pandas.DataFrame
        [``period``,] ``n``, ``ces_mean``.

    Examples
    --------
    >>> import pandas as pd
    >>> answers = pd.DataFrame({"response_id": ["a", "b", "c"], "date": "2024-03-01",
    ...                         "survey": ["ces", "ces", "nps"], "score": [7, 4, 0]})
    >>> ces(answers)
       n  ces_mean
    0  2       5.5
    """
    def summarise(part: pd.DataFrame) -> dict[str, float]:
        n = len(part)
        return {"n": n, "ces_mean": float(part["score"].astype(float).mean()) if n else math.nan}

    return _per_period(_scores(responses, "ces", "ces"), "date", period, "ces", summarise)


def first_contact_resolution(
    tickets: InputTable | pd.DataFrame, period: str | None = None
) -> pd.DataFrame:
    """First-contact resolution: share of resolved tickets resolved at the first contact.

    A ticket is resolved when ``resolved_at`` is set (without that column: when ``contacts``
    or ``resolved_first_contact`` is known). It was resolved at the first contact when
    ``resolved_first_contact`` is true, or else when ``contacts`` is 1.

    Parameters
    ----------
    tickets : InputTable or DataFrame
        The ``tickets`` input.
    period : {None, "D", "W", "M", "Q", "Y"}, default=None
        Per period of ``opened_at``, or overall.

    Returns
    -------
    pandas.DataFrame
        [``period``,] ``tickets``, ``resolved``, ``first_contact``, ``fcr``
        (first_contact / resolved).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"ticket_id": ["1", "2", "3", "4", "5"], "customer_id": "c",
    ...                   "opened_at": "2024-05-02",
    ...                   "resolved_at": ["2024-05-02", "2024-05-03", "2024-05-06",
    ...                                   "2024-05-04", None],
    ...                   "contacts": [1, 1, 3, 2, None]})
    >>> first_contact_resolution(t)
       tickets  resolved  first_contact  fcr
    0        5         4              2  0.5
    """
    frame = _table("tickets", tickets, "first_contact_resolution")
    first = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    if "resolved_first_contact" in frame:
        first = frame["resolved_first_contact"].copy()
    if "contacts" in frame:
        first = first.fillna(frame["contacts"] == 1)
    resolved = frame["resolved_at"].notna() if "resolved_at" in frame else first.notna()
    work = pd.DataFrame({"opened_at": frame["opened_at"], "resolved": resolved.to_numpy(),
                         "first": (first.fillna(False) & resolved).to_numpy(dtype=bool)})

    def summarise(part: pd.DataFrame) -> dict[str, float]:
        n_resolved, n_first = int(part["resolved"].sum()), int(part["first"].sum())
        return {"tickets": len(part), "resolved": n_resolved, "first_contact": n_first,
                "fcr": _ratio(n_first, n_resolved)}

    return _per_period(work, "opened_at", period, "first_contact_resolution", summarise)


def lead_conversion(leads: InputTable | pd.DataFrame, period: str | None = None) -> pd.DataFrame:
    """Lead conversion rate: leads won / leads created, per creation period.

    Leads still open count in the denominator, so recent periods read low until their
    leads close.

    Parameters
    ----------
    leads : InputTable or DataFrame
        The ``leads`` input.
    period : {None, "D", "W", "M", "Q", "Y"}, default=None
        Per period of ``created_at``, or overall.

    Returns
    -------
    pandas.DataFrame
        [``period``,] ``leads``, ``won``, ``lost``, ``open``, ``conversion_rate``.

    Examples
    --------
    >>> import pandas as pd
    >>> leads = pd.DataFrame({"lead_id": ["1", "2", "3", "4"],
    ...                       "created_at": ["2024-01-05", "2024-01-09", "2024-02-01",
    ...                                      "2024-02-11"],
    ...                       "won_at": ["2024-01-20", None, "2024-03-01", None],
    ...                       "lost_at": [None, "2024-01-30", None, None]})
    >>> lead_conversion(leads, period="M")
        period  leads  won  lost  open  conversion_rate
    0  2024-01      2    1     1     0              0.5
    1  2024-02      2    1     0     1              0.5
    """
    frame = _table("leads", leads, "lead_conversion")
    won = frame["won_at"].notna() if "won_at" in frame else pd.Series(False, index=frame.index)
    lost = frame["lost_at"].notna() if "lost_at" in frame else pd.Series(False, index=frame.index)
    work = pd.DataFrame({"created_at": frame["created_at"], "won": won.to_numpy(dtype=bool),
                         "lost": lost.to_numpy(dtype=bool)})

    def summarise(part: pd.DataFrame) -> dict[str, float]:
        n, n_won, n_lost = len(part), int(part["won"].sum()), int(part["lost"].sum())
        return {"leads": n, "won": n_won, "lost": n_lost, "open": n - n_won - n_lost,
                "conversion_rate": _ratio(n_won, n)}

    return _per_period(work, "created_at", period, "lead_conversion", summarise)


def sales_cycle(leads: InputTable | pd.DataFrame, period: str | None = None) -> pd.DataFrame:
    """Sales cycle length: days from ``created_at`` to ``won_at`` of won leads.

    Parameters
    ----------
    leads : InputTable or DataFrame
        The ``leads`` input (needs ``won_at`` for any result).
    period : {None, "D", "W", "M", "Q", "Y"}, default=None
        Per period of ``won_at`` (deals closed in the period), or overall.

    Returns
    -------
    pandas.DataFrame
        [``period``,] ``n`` (won leads), ``mean_days``, ``median_days`` (fractional days).

    Examples
    --------
    >>> import pandas as pd
    >>> leads = pd.DataFrame({"lead_id": ["1", "2", "3"],
    ...                       "created_at": ["2024-01-01", "2024-01-01", "2024-01-01"],
    ...                       "won_at": ["2024-01-11", "2024-01-31 12:00", None]})
    >>> sales_cycle(leads)
       n  mean_days  median_days
    0  2      20.25        20.25
    """
    frame = _table("leads", leads, "sales_cycle")
    if "won_at" in frame:
        won = frame[frame["won_at"].notna()]
        days = (won["won_at"] - won["created_at"]).dt.total_seconds() / 86400.0
        work = pd.DataFrame({"won_at": won["won_at"], "days": days})
    else:
        work = pd.DataFrame({"won_at": pd.Series(dtype="datetime64[us]"),
                             "days": pd.Series(dtype=float)})

    def summarise(part: pd.DataFrame) -> dict[str, float]:
        n = len(part)
        return {"n": n, "mean_days": float(part["days"].mean()) if n else math.nan,
                "median_days": float(part["days"].median()) if n else math.nan}

    return _per_period(work, "won_at", period, "sales_cycle", summarise)


def renewal_rate(subs: InputTable | pd.DataFrame, period: str | None = None) -> pd.DataFrame:
    """Renewal rate: terms renewed / terms ended with a known outcome.

    Parameters
    ----------
    subs : InputTable or DataFrame
        The ``subscriptions`` input (one row per subscription term).
    period : {None, "D", "W", "M", "Q", "Y"}, default=None
        Per period of ``period_end``, or overall.

    Returns
    -------
    pandas.DataFrame
        [``period``,] ``due`` (terms ending), ``renewed``, ``not_renewed``, ``pending``
        (outcome unknown: excluded from the rate), ``renewal_rate``.

    Examples
    --------
    >>> import pandas as pd
    >>> subs = pd.DataFrame({"subscription_id": ["s1", "s2", "s3", "s4"], "customer_id": "c",
    ...                      "period_end": "2024-06-30",
    ...                      "renewed": ["true", "yes", "false", None]})
    >>> renewal_rate(subs)
       due  renewed  not_renewed  pending  renewal_rate
    0    4        2            1        1      0.666667
    """
    frame = _table("subscriptions", subs, "renewal_rate")
    work = pd.DataFrame({"period_end": frame["period_end"],
                         "renewed": frame["renewed"].eq(True).fillna(False).to_numpy(bool),
                         "not_renewed": frame["renewed"].eq(False).fillna(False).to_numpy(bool)})

    def summarise(part: pd.DataFrame) -> dict[str, float]:
        n, yes, no = len(part), int(part["renewed"].sum()), int(part["not_renewed"].sum())
        return {"due": n, "renewed": yes, "not_renewed": no, "pending": n - yes - no,
                "renewal_rate": _ratio(yes, yes + no)}

    return _per_period(work, "period_end", period, "renewal_rate", summarise)


#: Columns of :func:`email_rates`, in order.
EMAIL_RATE_COLUMNS: tuple[str, ...] = (
    "campaign", "sent", "delivered", "bounced", "opened", "clicked", "spam_complaints",
    "unsubscribed", "delivery_rate", "bounce_rate", "open_rate", "click_rate",
    "click_to_open_rate", "spam_complaint_rate", "unsubscribe_rate",
)


def email_rates(events: InputTable | pd.DataFrame) -> pd.DataFrame:
    """Email analytics per campaign, counting unique recipients per event type.

    A recipient is the ``customer_id`` (or, where it is empty, the ``email``); each count is
    of distinct recipients, so repeated opens count once. Engagement implies delivery and a
    click implies an open (images are often blocked), as email tools count them:

    - ``delivered``: recipients with a ``delivered``, ``open``, ``click``,
      ``spam_complaint`` or ``unsubscribe`` event;
    - ``bounced``: recipients with a ``bounce`` and no delivery (a retry that got through
      counts as delivered); ``sent`` = delivered + bounced;
    - ``opened``: recipients with an ``open`` or a ``click``; ``clicked``,
      ``spam_complaints``, ``unsubscribed``: recipients with that event.

    Rates over sent: ``delivery_rate`` = delivered / sent, ``bounce_rate`` = bounced / sent.
    Rates over delivered: ``open_rate``, ``click_rate``, ``spam_complaint_rate``,
    ``unsubscribe_rate``. ``click_to_open_rate`` = clicked / opened.

    Parameters
    ----------
    events : InputTable or DataFrame
        The ``email_events`` input.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EMAIL_RATE_COLUMNS`, one row per campaign, sorted by campaign.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({
    ...     "campaign": "spring",
    ...     "customer_id": ["1", "2", "3", "4", "1", "1", "2", "1"],
    ...     "event": ["delivered", "delivered", "delivered", "bounce", "open", "open",
    ...               "click", "click"],
    ...     "timestamp": "2024-04-01T10:00:00Z"})
    >>> r = email_rates(ev).iloc[0]
    >>> int(r["sent"]), int(r["delivered"]), int(r["opened"]), int(r["clicked"])
    (4, 3, 2, 2)
    >>> float(r["delivery_rate"]), float(r["bounce_rate"]), round(float(r["open_rate"]), 3)
    (0.75, 0.25, 0.667)
    """
    frame = _table("email_events", events, "email_rates")
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="str" if c == "campaign" else
                                          "int64" if i <= 7 else "float64")
                             for i, c in enumerate(EMAIL_RATE_COLUMNS)})
    recipient = pd.Series(pd.NA, index=frame.index, dtype="str")
    if "customer_id" in frame:
        recipient = "id:" + frame["customer_id"]
    if "email" in frame:
        recipient = recipient.fillna("email:" + frame["email"])
    seen = pd.crosstab([frame["campaign"], recipient.rename("recipient")], frame["event"])
    seen = seen.reindex(columns=list(EMAIL_EVENTS), fill_value=0) > 0
    delivered = seen[["delivered", "open", "click", "spam_complaint", "unsubscribe"]].any(axis=1)
    flags = pd.DataFrame({
        "delivered": delivered,
        "bounced": seen["bounce"] & ~delivered,
        "opened": seen["open"] | seen["click"],
        "clicked": seen["click"],
        "spam_complaints": seen["spam_complaint"],
        "unsubscribed": seen["unsubscribe"],
    })
    counts = flags.groupby(level="campaign", sort=True).sum().astype("int64")
    counts.insert(0, "sent", counts["delivered"] + counts["bounced"])

    def rate(num: str, den: str) -> pd.Series:
        return (counts[num] / counts[den].where(counts[den] > 0)).astype(float)

    out = counts.assign(
        delivery_rate=rate("delivered", "sent"),
        bounce_rate=rate("bounced", "sent"),
        open_rate=rate("opened", "delivered"),
        click_rate=rate("clicked", "delivered"),
        click_to_open_rate=rate("clicked", "opened"),
        spam_complaint_rate=rate("spam_complaints", "delivered"),
        unsubscribe_rate=rate("unsubscribed", "delivered"),
    )
    out = out.rename_axis("campaign").reset_index()
    out["campaign"] = out["campaign"].astype("str")
    return out[list(EMAIL_RATE_COLUMNS)]
