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

Assignment
----------
:func:`assign_campaigns` gives the result of the weekly run's campaigns step (the flags of
:func:`rfm_engine.campaigns.assign.customer_flags`, then
:func:`rfm_engine.campaigns.assign.assign_campaigns`) for a Spark DataFrame of customers, row
for row. Each rule has one definition, which both engines call or read:

* **flags** (normalized email, its validity for the layout, consent, suppression by id or
  normalized email, quarantine of formula cells and overlong first names): a pandas UDF calls
  ``customer_flags`` itself on each Arrow batch (every row depends on its own fields), with
  the suppression and consent lists broadcast to the executors once;
* **owner**: a broadcast join with the plan's segments
  (:func:`~rfm_engine.campaigns.plan.segment_owner`: priority, then plan order);
* **exclusions**: one ``when`` chain in the order of
  :data:`~rfm_engine.campaigns.plan.EXCLUSION_REASONS` (the first rule that fires decides);
  the spacing joins :func:`~rfm_engine.campaigns.assign.last_contacts` of the history;
* **one row per address**: ``row_number`` over (campaign, address) by ``monetary``
  descending (missing last), then ``customer_id``;
* **holdout**: :func:`holdout_draw` below the campaign's fraction;
* **cap**: a running count of targets over the capped campaign's eligible customers by
  value (the same order); a customer with as many targets above as ``max_size`` is
  ``over_cap``. That window holds one campaign's eligible customers in one task.

Text sorts by code point on both engines (Spark compares UTF-8 bytes, Python code points:
the same order), so ties break alike. :func:`campaign_counts` counts the (campaign, reason,
group) combinations on Spark and labels them with
:func:`~rfm_engine.campaigns.assign.tally_counts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ...campaigns.assign import (
    check_unique,
    customer_flags,
    last_contacts,
    tally_counts,
)
from ...campaigns.consent import ConsentList
from ...campaigns.plan import DEFAULT_PLAN, EXCLUSION_REASONS, Campaign, segment_owner
from ...campaigns.suppression import SuppressionList
from ...io._validation import as_date, require_columns
from .session import pandas_conversion

__all__ = ["assign_campaigns", "campaign_counts", "holdout_draw"]

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


# --- assignment -------------------------------------------------------------------------------

def assign_campaigns(
    customers: DataFrame,
    campaigns: Sequence[Campaign] = DEFAULT_PLAN,
    *,
    as_of: date | str,
    layout: str = "generic",
    suppression: SuppressionList | None = None,
    consents: ConsentList | None = None,
    contact_history: pd.DataFrame | None = None,
) -> DataFrame:
    """Give every customer at most one campaign and a group, on Spark.

    The campaigns step of the weekly run: the flags of
    :func:`rfm_engine.campaigns.assign.customer_flags` (normalized email, its validity for
    ``layout``, consent, suppression, quarantine), then the rules of
    :func:`rfm_engine.campaigns.assign.assign_campaigns` in the same order with the same
    results (see the module docs for how each runs on Spark).

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        One row per customer: ``customer_id``, ``segment``; ``email``, ``first_name``,
        ``last_purchase`` when known; ``monetary`` when a campaign has ``max_size``.
    campaigns : sequence of Campaign, default=DEFAULT_PLAN
        The plan, in order.
    as_of : date or str
        The run date.
    layout : str, default="generic"
        The email tool's layout.
    suppression : SuppressionList, optional
        Who must not be contacted (broadcast to the executors).
    consents : ConsentList, optional
        The consent list (broadcast to the executors).
    contact_history : pandas.DataFrame, optional
        Target rows of earlier runs (``customer_id``, ``campaign``, ``as_of``), as for the
        pandas function; reduced on the driver to one row per customer and campaign
        (:func:`~rfm_engine.campaigns.assign.last_contacts`), then joined.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customers`` with ``email`` normalized (added, null, when absent), ``email_valid``,
        ``email_consent`` (with ``consents``), then ``campaign``, ``campaign_type``,
        ``channel``, ``group``, ``exclusion_reason`` (text, null for NA) and
        ``holdout_draw`` (null without a campaign). Lazy: nothing runs until it is used.

    Raises
    ------
    MissingColumnsError
        When a needed column is absent.
    InputError
        When a campaign name is repeated.
    """
    plan = tuple(campaigns)
    check_unique(plan)
    day = as_date(as_of, "as_of")
    needed = ["customer_id", "segment"]
    if any(c.max_size is not None for c in plan):
        needed.append("monetary")
    require_columns(pd.DataFrame(columns=customers.columns), needed, "customers")
    spark = customers.sparkSession
    has_email = any(c.channel == "email" for c in plan)

    customers = customers.drop(*_OUTPUT)  # an earlier assignment's columns are replaced
    table = _with_flags(customers, day, layout, suppression, consents)
    table = table.join(F.broadcast(_plan_frame(spark, plan)), "segment", "left")

    cand = F.col(_CAMP).isNotNull()
    is_email = F.coalesce(F.col("channel") == "email", F.lit(False))
    if contact_history is not None and any(c.min_days_between_contacts for c in plan):
        past = last_contacts(contact_history, day)
        with pandas_conversion():
            past = spark.createDataFrame(past.astype({"days": "int64"}),
                                         "customer_id string, campaign string, _days long")
        table = table.join(past, ["customer_id", "campaign"], "left")
        recent = F.coalesce(F.col("_days") < F.col("_spacing"), F.lit(False))
    else:
        recent = F.lit(False)
    rules = {  # the per-row rules, applied in the order of EXCLUSION_REASONS
        "suppressed": F.col("_suppressed"),
        "no_consent": (is_email & ~F.col("email_consent")) if consents is not None else None,
        # customer_flags leaves a blank address missing: "no email" is a missing one
        "no_email": is_email & F.col("email").isNull() if has_email else None,
        "invalid_email": is_email & ~F.col("email_valid") if has_email else None,
        "quarantined": F.col("_quarantined"),
        "contacted_recently": recent,
    }
    reason = F.lit(None).cast("string")
    for why in reversed(EXCLUSION_REASONS):  # the first rule that fires decides
        if rules.get(why) is not None:
            reason = F.when(cand & rules[why], F.lit(why)).otherwise(reason)
    table = table.withColumn("exclusion_reason", reason)

    value = (F.nanvl(F.col("monetary").cast("double"), F.lit(None).cast("double"))
             if "monetary" in customers.columns else F.lit(0.0))
    by_value = [value.desc_nulls_last(), F.col("customer_id").asc()]
    if has_email:  # one row per address: the most valuable keeps it
        open_ = cand & F.col("exclusion_reason").isNull() & is_email
        # rows outside the rule get a partition each (their id), so no partition grows big
        key = F.when(open_, F.col("email")).otherwise(F.col("customer_id"))
        rank = F.row_number().over(Window.partitionBy(F.col(_CAMP), open_, key)
                                   .orderBy(*by_value))
        table = table.withColumn("exclusion_reason", F.when(
            open_ & (rank > 1), F.lit("duplicate_email")).otherwise(F.col("exclusion_reason")))

    eligible = cand & F.col("exclusion_reason").isNull()
    draw = F.when(cand, holdout_draw(F.col("customer_id"), F.col("campaign"), day))
    table = table.withColumn("holdout_draw", draw)
    group = (F.when(~cand, F.lit("none"))
             .when(F.col("exclusion_reason") == "suppressed", F.lit("suppressed"))
             .when(~eligible, F.lit("excluded"))
             .when(F.col("holdout_draw") < F.col("_fraction"), F.lit("holdout"))
             .otherwise(F.lit("target")))
    table = table.withColumn("group", group)

    if any(c.max_size is not None for c in plan):  # walk down by value to the cap
        capped = eligible & F.col("_max_size").isNotNull()
        key = F.when(capped, F.lit("")).otherwise(F.col("customer_id"))
        targets_before = F.sum((F.col("group") == "target").cast("long")).over(
            Window.partitionBy(F.col(_CAMP), capped, key).orderBy(*by_value)
            .rowsBetween(Window.unboundedPreceding, -1))
        table = table.withColumn(
            "_cut", capped & (F.coalesce(targets_before, F.lit(0)) >= F.col("_max_size")))
        cut = F.col("_cut")  # a column: the rules below change what it was computed from
        table = (table.withColumn("exclusion_reason", F.when(cut, F.lit("over_cap"))
                                  .otherwise(F.col("exclusion_reason")))
                 .withColumn("group", F.when(cut, F.lit("excluded")).otherwise(F.col("group"))))

    # the columns in the pandas path's order: the address where it was, the flags, the rest
    kept = [c for c in customers.columns if c not in (*_OUTPUT, *_FLAGS_OUT[1:])]
    kept += [c for c in _FLAGS_OUT if c in table.columns and c not in kept]
    return table.select(*kept, *_OUTPUT)


def campaign_counts(assigned: DataFrame, campaigns: Sequence[Campaign]) -> pd.DataFrame:
    """Count every step of :func:`assign_campaigns` per campaign, on Spark.

    The combinations (campaign, reason, group) are counted by a Spark aggregation (a few
    rows reach the driver); :func:`rfm_engine.campaigns.assign.tally_counts` labels them, as
    for the pandas :func:`~rfm_engine.campaigns.assign.campaign_counts`.

    Parameters
    ----------
    assigned : pyspark.sql.DataFrame
        The output of :func:`assign_campaigns`.
    campaigns : sequence of Campaign
        The plan it was made with.

    Returns
    -------
    pandas.DataFrame
        As :func:`rfm_engine.campaigns.assign.campaign_counts`.
    """
    require_columns(pd.DataFrame(columns=assigned.columns),
                    ["campaign", "group", "exclusion_reason"], "assignment")
    rows = (assigned.groupBy(F.col("campaign"), F.col("exclusion_reason").alias("reason"),
                             F.col("group")).agg(F.count(F.lit(1)).alias("n")).collect())
    combos = pd.DataFrame([r.asDict() for r in rows],
                          columns=["campaign", "reason", "group", "n"])
    return tally_counts(combos.astype({"n": "int64"}), campaigns)


#: Columns :func:`assign_campaigns` adds after the flags, in order.
_OUTPUT = ("campaign", "campaign_type", "channel", "group", "exclusion_reason", "holdout_draw")
#: Flag columns kept in the output (the others are read by the rules, then dropped).
_FLAGS_OUT = ("email", "email_valid", "email_consent")
#: The plan row (its position) a customer's segment belongs to.
_CAMP = "_camp"


def _plan_frame(spark: SparkSession, plan: Sequence[Campaign]) -> DataFrame:
    """One row per claimed segment: the owning campaign (by priority) and its settings."""
    rows = [(segment, j, plan[j].name, plan[j].type, plan[j].channel,
             float(plan[j].holdout_fraction), plan[j].max_size,
             plan[j].min_days_between_contacts or 0)
            for segment, j in segment_owner(plan).items()]
    return spark.createDataFrame(rows, f"segment string, {_CAMP} int, campaign string, "
                                       "campaign_type string, channel string, _fraction double, "
                                       "_max_size long, _spacing long")


def _with_flags(customers: DataFrame, day: date, layout: str,
                suppression: SuppressionList | None, consents: ConsentList | None
                ) -> DataFrame:
    """Add the flags of :func:`~rfm_engine.campaigns.assign.customer_flags`, batch by batch.

    A pandas UDF calls that very function on each Arrow batch of the customers (each row
    depends on its own fields), with the suppression and consent lists broadcast.
    """
    spark = customers.sparkSession
    lists = spark.sparkContext.broadcast((suppression, consents))
    inputs = [c for c in ("customer_id", "email", "first_name", "last_purchase")
              if c in customers.columns]
    fields = ["email string", "email_valid boolean", "suppressed boolean",
              "quarantined boolean"]
    if consents is not None:
        fields.insert(2, "email_consent boolean")
    schema = ", ".join(fields)

    def flags(batch: pd.DataFrame) -> pd.DataFrame:
        sup, con = lists.value
        # text as the pandas path holds it (pandas' str dtype), so the rules see the same
        batch = batch.astype({c: "str" for c in ("customer_id", "email", "first_name")
                              if c in batch})
        with pandas_conversion():
            found = customer_flags(batch, as_of=day, layout=layout, suppression=sup,
                                   consents=con)
        found["email"] = found["email"].astype(object).where(found["email"].notna(), None)
        return found

    with pandas_conversion():
        udf = F.pandas_udf(flags, schema)  # type: ignore[call-overload]
        out = customers.withColumn("_flags", udf(F.struct(*(F.col(c) for c in inputs))))
    names = [f.split()[0] for f in fields]
    renamed = {"suppressed": "_suppressed", "quarantined": "_quarantined"}
    return out.select(*(c for c in customers.columns if c not in names),
                      *(F.col(f"_flags.{n}").alias(renamed.get(n, n)) for n in names))
