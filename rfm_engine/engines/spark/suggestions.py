"""Cross-sell and up-sell suggestions on Spark: what customers of the same segment bought.

:func:`suggest_items` gives the items of :func:`rfm_engine.campaigns.suggestions.suggest_items`
(same items, same order) from the lines of :class:`~.loading.SparkTransactions`, without a
line leaving Spark:

* a customer **bought** an item when their net amount on it is above zero (amounts are
  exact decimals, as in DuckDB);
* **cross-sell**: per segment, the items ranked by how many of its customers bought them
  (ties: item name, ``row_number``); each target gets the first ``k`` it has not bought,
  joined by ``"|"`` in rank order (only the first ``k`` + its own count of items of the
  ranking can hold them, as in DuckDB);
* **up-sell** (with a category and a product): the target's main category (highest net
  amount, ties: name) and usual unit price there (amount / lines); a product's price is its
  amount / lines over every buyer's bought pairs; the suggestion is the best-ranked product
  of that segment and category (buyers, then name) priced above the usual price that the
  target has not bought. The DuckDB engine finds it with an ASOF join on the running
  maximum price; it is the same product: the minimum rank among those candidates.

Only the customers of the segments that hold a target are read.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ...campaigns.exports import LIST_SEPARATOR
from ...campaigns.suggestions import _check_k
from ...io._validation import require_columns
from .loading import SparkTransactions

__all__ = ["suggest_items"]


def suggest_items(tx: SparkTransactions, customers: DataFrame, *,
                  targets: Column | None = None, k: int = 3) -> DataFrame:
    """Add cross-sell and up-sell suggestions to the targets of a Spark customer table.

    The same suggestions as :func:`rfm_engine.campaigns.suggestions.suggest_items` (see the
    module docs).

    Parameters
    ----------
    tx : SparkTransactions
        The loaded lines: ``category`` and/or ``product_id`` when mapped.
    customers : pyspark.sql.DataFrame
        ``customer_id`` and ``segment`` (customers without one get no suggestion).
    targets : Column, optional
        A boolean Column over ``customers``: who gets suggestions (default: everyone).
    k : int, default=3
        At most this many cross-sell suggestions per customer.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customers`` plus ``cross_sell`` (by ``category`` when the lines have one, else by
        ``product_id``) and ``upsell`` (with both), text, null outside the targets and where
        there is none; without a category or product, ``customers`` as it is.
    """
    _check_k(k, "suggest_items")
    require_columns(pd.DataFrame(columns=customers.columns),
                    ["customer_id", "segment"], "customers")
    mapped = [c for c in ("category", "product_id") if c in tx.frame.columns]
    if not mapped:
        return customers
    wanted = F.coalesce(targets, F.lit(False)) if targets is not None else F.lit(True)
    marked = customers.withColumn("_wanted", wanted)
    people = marked.filter(F.col("segment").isNotNull()).select(
        F.col("customer_id").alias("cid"), F.col("segment").cast("string").alias("segment"),
        "_wanted")
    shelves = people.filter("_wanted").select("segment").distinct()
    scope = people.join(F.broadcast(shelves), "segment", "left_semi")
    lines = tx.frame.select(F.col("customer_id").alias("cid"),
                            *(F.col(c).cast("string").alias(c) for c in mapped), "amount")
    lines = lines.join(scope, "cid")  # the lines of the customers in scope
    found = _cross_sell(lines, scope, "category" if "category" in mapped else "product_id", k)
    if len(mapped) == 2:
        found = found.join(_upsell(lines, tx.frame), "cid", "full_outer")
    out = marked.join(found.withColumnRenamed("cid", "customer_id"), "customer_id", "left")
    columns = ["cross_sell", "upsell"] if len(mapped) == 2 else ["cross_sell"]
    return out.select(*customers.columns, *(
        F.when(F.col("_wanted"), F.col(c)).alias(c) for c in columns))


def _cross_sell(lines: DataFrame, scope: DataFrame, column: str, k: int) -> DataFrame:
    """``cid, cross_sell`` of the targets: the first ``k`` unbought items of the ranking."""
    bought = (lines.filter(F.col(column).isNotNull())
              .groupBy("cid", "segment", "_wanted", F.col(column).alias("item"))
              .agg(F.sum("amount").alias("amount")).filter(F.col("amount") > 0)
              .drop("amount"))
    ranking = (bought.groupBy("segment", "item").agg(F.count(F.lit(1)).alias("n"))
               .withColumn("r", F.row_number().over(Window.partitionBy("segment").orderBy(
                   F.col("n").desc(), F.col("item").asc()))).drop("n"))
    owned = bought.filter("_wanted").groupBy("cid").agg(F.count(F.lit(1)).alias("owned"))
    wanted = scope.filter("_wanted").select("cid", "segment").join(owned, "cid", "left")
    pairs = (wanted.join(ranking, "segment")
             .filter(F.col("r") <= F.lit(k) + F.coalesce(F.col("owned"), F.lit(0)))
             .join(bought.select("cid", "item"), ["cid", "item"], "left_anti"))
    first = pairs.withColumn("i", F.row_number().over(
        Window.partitionBy("cid").orderBy("r"))).filter(F.col("i") <= k)
    return first.groupBy("cid").agg(F.concat_ws(LIST_SEPARATOR, F.transform(
        F.array_sort(F.collect_list(F.struct("r", "item"))), lambda x: x["item"]))
        .alias("cross_sell"))


def _upsell(lines: DataFrame, every_line: DataFrame) -> DataFrame:
    """``cid, upsell`` of the targets: the best-ranked pricier product they have not bought."""
    def pairs_bought(frame: DataFrame, keys: list[str]) -> DataFrame:
        return (frame.filter(F.col("category").isNotNull() & F.col("product_id").isNotNull())
                .groupBy(*keys, "category", "product_id")
                .agg(F.sum("amount").alias("amount"), F.count(F.lit(1)).alias("units"))
                .filter((F.col("amount") > 0) & (F.col("units") > 0)))

    def per_unit(amount: str, units: str) -> Column:  # DuckDB divides these in DOUBLE
        return F.col(amount).cast("double") / F.col(units).cast("double")

    bought = pairs_bought(lines, ["cid", "segment", "_wanted"])
    everyone = every_line.select(F.col("customer_id").alias("cid"),
                                 F.col("category").cast("string").alias("category"),
                                 F.col("product_id").cast("string").alias("product_id"),
                                 "amount")
    prices = (pairs_bought(everyone, ["cid"]).groupBy("category", "product_id")
              .agg(F.sum("amount").alias("amount"), F.sum("units").alias("units"))
              .select("category", "product_id", per_unit("amount", "units").alias("price")))
    main = (bought.filter("_wanted").groupBy("cid", "segment", "category")
            .agg(F.sum("amount").alias("amount"), F.sum("units").alias("units"))
            .withColumn("i", F.row_number().over(Window.partitionBy("cid").orderBy(
                F.col("amount").desc(), F.col("category").asc())))
            .filter(F.col("i") == 1)
            .select("cid", "segment", "category", per_unit("amount", "units").alias("usual")))
    shelves = main.select("segment", "category").distinct()
    ranked = (bought.join(F.broadcast(shelves), ["segment", "category"], "left_semi")
              .groupBy("segment", "category", "product_id")
              .agg(F.count(F.lit(1)).alias("n"))
              .join(prices, ["category", "product_id"])
              .withColumn("r", F.row_number().over(
                  Window.partitionBy("segment", "category")
                  .orderBy(F.col("n").desc(), F.col("product_id").asc()))))
    candidates = (main.join(ranked, ["segment", "category"])
                  .filter(F.col("price") > F.col("usual"))
                  .join(bought.select("cid", "product_id"), ["cid", "product_id"],
                        "left_anti"))
    return candidates.groupBy("cid").agg(F.min_by("product_id", "r").alias("upsell"))
