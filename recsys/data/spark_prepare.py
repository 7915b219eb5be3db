"""Data preparation on Apache Spark (`recsys data prepare --engine spark`), for transaction
lines larger than one machine's memory.

It writes what ``recsys.data.prepare.prepare`` writes in one process, by the same rules:
reading and typing as ``recsys.data.load`` does (Online Retail / Online Retail II or the
interactions layout, ids as ``sources.to_id`` makes them, ISO 8601 timestamps), the adapters
of ``recsys.data.sources`` (product titles and prices, customers' countries) and every step
of ``recsys.data.clean`` with its report; the non-product rule is ``clean.non_product_mask``
itself, applied to the distinct product codes. Each table is a directory of Parquet parts
(``transactions.parquet/``) that ``load_dataset`` and ``recsys train`` read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from recsys.data import sources
from recsys.data.clean import CleaningReport, CleaningStep, non_product_mask
from recsys.data.load import MAX_PROBLEMS
from recsys.data.prepare import INTERACTIONS, REPORT
from recsys.data.schema import TABLES
from recsys.errors import DataError

SPARK_TYPES = {"str": "string", "float64": "double", "bool": "boolean",
               "datetime64[ns]": "timestamp_ntz"}
# clean's steps on transactions, in order: (name, reason)
STEPS = [
    ("missing_ids", "no customer id (guest) or no product id"),
    ("cancellations", "order id starts with C or quantity < 0, plus the purchase each undoes"),
    ("non_positive_quantity", "quantity <= 0 or missing"),
    ("non_positive_amount", "amount <= 0 (zero or negative price; unknown kept)"),
    ("non_product_codes", "postage, fees, vouchers (code without digit, fee code, gift_*)"),
    ("unknown_products", "product id not in the product table"),
]


def _strip(text: Column) -> Column:
    """``str.strip`` for the whitespace that occurs in files (no regex: ids are most columns
    of most lines)."""
    return F.btrim(text, F.lit(" \t\n\r\f\v"))


def _blank_to_null(text: Column) -> Column:
    return F.when(_strip(text) == "", None).otherwise(text)


def _id(column: Column) -> Column:
    """``sources.to_id`` of text: stripped, ``"17850.0"`` -> ``"17850"``, empty -> null."""
    text = _strip(column.cast("string"))
    text = F.when(text.contains("."), F.regexp_replace(text, r"^(\d+)\.0+$", "$1")) \
        .otherwise(text)
    return F.when(text == "", None).otherwise(text)


def _spark_column(col: str, dtype: str, label: str, lines: DataFrame, required: bool
                  ) -> tuple[Column, list[tuple[str, Column, str]]]:
    """One column converted as ``load.coerce`` does, and its checks ``(column, bad, why)``."""
    raw = F.col(f"`{label}`")
    checks = []
    if dtype == "str":
        is_id = col.endswith(("_id", "customer", "stock_code", "invoice"))
        value = _id(raw) if is_id else _blank_to_null(raw.cast("string"))
    elif dtype == "datetime64[ns]" and isinstance(lines.schema[label].dataType, LongType):
        value = F.timestamp_micros(F.floor(raw / 1000)).cast("timestamp_ntz")  # see read
        checks.append((col, raw.isNotNull() & value.isNull(), "is not a date"))
    else:
        value = raw.cast(SPARK_TYPES[dtype])
        checks.append((col, raw.isNotNull() & value.isNull(),
                       "is not a number" if dtype == "float64" else f"is not a {dtype}"))
    if required:  # an empty cell; unconvertible ones are reported above
        empty = value.isNull() if dtype == "str" else \
            raw.isNull() | (F.trim(raw.cast("string")) == "")
        checks.append((col, empty, "empty value in a required column"))
    return value, checks


def _spark_problems(lines: DataFrame, typed: DataFrame, checks: list[tuple[str, Column, str]],
                    labels: dict[str, str], file: str
                    ) -> tuple[list[tuple[str, None, str, str]], int]:
    """Each failed check as ``(file, None, column, "N value(s) why, e.g. [...]")``, and the
    malformed values in all."""
    counts = typed.agg(*[F.sum(F.col(f"_bad{i}").cast("long")).alias(str(i))
                         for i in range(len(checks))]).first() if checks else None
    problems, total = [], 0
    for i, (col, bad, why) in enumerate(checks):
        found = int((counts[str(i)] if counts else 0) or 0)
        if found:
            total += found
            examples = lines.where(bad).select(F.col(f"`{labels[col]}`")).limit(3).collect()
            problems.append((file, None, labels[col],
                             f"{found} value(s) {why}, e.g. {[r[0] for r in examples]}"))
    return problems, total


def _typed(lines: DataFrame, types: dict[str, str], file: str, *, labels: dict[str, str],
           required: set[str], not_null: set[str]) -> DataFrame:
    """``load.coerce`` in Spark: the columns of ``types`` present in ``lines`` (named by
    ``labels``), converted; malformed or missing required values raise ``DataError`` with
    counts and examples (rows are not numbered: a distributed file has no line order)."""
    missing = [c for c in types if c in required and labels[c] not in lines.columns]
    if missing:
        raise DataError(f"{file}: missing required column(s) "
                        f"{', '.join(labels[c] for c in missing)} (found: "
                        f"{', '.join(lines.columns)})",
                        [(file, None, labels[c], "missing required column") for c in missing])
    present = [c for c in types if labels[c] in lines.columns]
    converted, checks = [], []
    for col in present:
        value, found = _spark_column(col, types[col], labels[col], lines, col in not_null)
        converted.append(value.alias(col))
        checks += found
    # One pass converts and checks; the converted lines are kept for every later step.
    flags = [bad.alias(f"_bad{i}") for i, (_c, bad, _w) in enumerate(checks)]
    typed = lines.select(*converted, *flags).persist(StorageLevel.MEMORY_AND_DISK)
    problems, total = _spark_problems(lines, typed, checks, labels, file)
    if problems:
        typed.unpersist()
        raise DataError(f"{file}: {total} malformed value(s); first in column "
                        f"{problems[0][2]}: {problems[0][3]}", problems[:MAX_PROBLEMS])
    return typed.select(*present)


def read_lines(spark: SparkSession, source: str, fmt: str | None = None) -> DataFrame:
    """Transaction lines of a file or a directory (read recursively, e.g. ``day=.../``
    partitions) of ``.csv``/``.csv.gz`` (all text) or ``.parquet`` files."""
    path = Path(source)
    if fmt is None:
        if not path.exists():
            raise DataError(f"{source}: no such file or directory")
        files = [path] if path.is_file() else [
            p for p in path.rglob("*") if p.is_file() and not p.name.startswith(("_", "."))]
        kinds = {"parquet" if p.name.endswith(".parquet") else
                 "csv" if re.search(r"\.(csv|txt)(\.gz)?$", p.name) else p.name for p in files}
        if len(kinds) != 1 or not kinds <= {"csv", "parquet"}:
            raise DataError(f"{source}: give one .csv[.gz] or .parquet file or a directory of "
                            f"them, one format (found: {sorted(kinds)[:5] or 'nothing'})")
        fmt = kinds.pop()
    # Parquet written by pandas holds nanosecond timestamps, which Spark 3.5 reads only as
    # longs; they become microsecond timestamps, in UTC like every timestamp here.
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    reader = spark.read.option("recursiveFileLookup", "true")
    if fmt == "csv":
        return reader.option("header", "true").option("escape", '"').csv(source)  # RFC 4180
    return reader.parquet(source)


def canonical(lines: DataFrame, file: str) -> tuple[DataFrame, DataFrame | None,
                                                    DataFrame | None]:
    """Raw lines -> canonical transactions, and products and customers where the layout has
    them (``sources.online_retail``; ``sources.interactions`` has neither)."""
    convention = sources.detect_online_retail(lines.columns)
    if convention is not None:
        rename = sources.ONLINE_RETAIL_CONVENTIONS[convention]
        raw = _typed(lines, sources.ONLINE_RETAIL_TYPES, file,
                     labels={v: k for k, v in rename.items()},
                     required=set(sources.ONLINE_RETAIL_TYPES),
                     not_null=set(sources.ONLINE_RETAIL_TYPES) - sources.ONLINE_RETAIL_OPTIONAL)
        tx = raw.select(F.col("invoice").alias("order_id"), F.col("customer").alias("customer_id"),
                        F.col("stock_code").alias("product_id"), "quantity",
                        (F.col("quantity") * F.col("price")).alias("amount"),
                        F.col("invoice_date").alias("timestamp"),
                        F.coalesce("country", F.lit("online")).alias("store_id"))
        return tx, _online_retail_products(raw), _customers(tx)
    if len(set(sources.INTERACTIONS_REQUIRED) & set(lines.columns)) < 2:
        raise DataError(f"{file}: columns {lines.columns} match no known layout (Online "
                        "Retail, Online Retail II, or customer_id, product_id, timestamp"
                        "[, quantity, amount, order_id, store_id])")
    names = ("order_id", "customer_id", "product_id", "quantity", "amount", "timestamp",
             "store_id")
    raw = _typed(lines, {c: TABLES["transactions"][c].dtype for c in names}, file,
                 labels={c: c for c in names}, required=set(sources.INTERACTIONS_REQUIRED),
                 not_null={"product_id", "timestamp"})
    stamp = F.date_format("timestamp", "yyyyMMddHHmmss")
    defaults = {"quantity": F.lit(1.0), "amount": F.lit(None).cast("double"),
                "order_id": F.concat(F.col("customer_id"), F.lit("@"), stamp),
                "store_id": F.lit("online")}
    tx = raw.select(*[F.col(c) if c in raw.columns else defaults[c].alias(c) for c in names])
    return tx.withColumn("store_id", F.coalesce("store_id", F.lit("online"))), None, None


def _most_frequent(frame: DataFrame, key: str, value: str) -> DataFrame:
    """Per ``key``, its most frequent ``value`` (ties: the smallest), as in ``sources``."""
    counts = frame.where(F.col(key).isNotNull() & F.col(value).isNotNull()) \
        .groupBy(key, value).count()
    order = Window.partitionBy(key).orderBy(F.col("count").desc(), F.col(value))
    return counts.withColumn("_rank", F.row_number().over(order)).where("_rank = 1") \
        .select(key, value)


def _online_retail_products(raw: DataFrame) -> DataFrame:
    """Every stock code with its most frequent description and median positive price."""
    titles = _most_frequent(raw.select("stock_code", _strip(F.col("description")).alias(
        "title")), "stock_code", "title")
    prices = raw.where(F.col("price") > 0).groupBy("stock_code").agg(
        F.median("price").alias("price"))
    ids = raw.select("stock_code").where(F.col("stock_code").isNotNull()).distinct()
    joined = ids.join(titles, "stock_code", "left").join(prices, "stock_code", "left")
    return joined.select(F.col("stock_code").alias("product_id"),
                         F.coalesce("title", F.lit("")).alias("title"),
                         F.lit("").alias("description"), F.lit("").alias("category"),
                         F.lit("").alias("brand"), "price", F.lit(True).alias("available"),
                         F.lit("").alias("attributes"))


def _customers(tx: DataFrame) -> DataFrame:
    """Customers with their most frequent store (country) as attribute."""
    country = _most_frequent(tx, "customer_id", "store_id")
    return country.select("customer_id", F.lit(None).cast("timestamp_ntz").alias("signup_date"),
                          F.lit(True).alias("consent_personalization"),
                          F.lit(True).alias("consent_marketing"),
                          F.concat(F.lit("country="), "store_id").alias("attributes"))


def _flagged(product_ids: DataFrame) -> list[str]:
    """The distinct codes that ``clean.non_product_mask`` calls postage, fees or vouchers
    (the distinct codes of a catalog fit in the driver's memory)."""
    codes = pd.Series([r[0] for r in product_ids.where(F.col("product_id").isNotNull())
                       .select("product_id").distinct().collect()], dtype="str")
    return codes[non_product_mask(codes)].tolist()


def clean_lines(tx: DataFrame, products: DataFrame | None
                ) -> tuple[DataFrame, DataFrame | None, dict[str, int]]:
    """Every transaction line tagged with the first ``clean`` step that drops it
    (``_drop``, null when kept), the products without non-product codes, and the count of
    lines per step (``None``: kept)."""
    flagged = _flagged(tx)
    # A line number for tie-breaks, fixed by persisting (recomputing could renumber).
    tx = tx.withColumn("_row", F.monotonically_increasing_id()).persist(
        StorageLevel.MEMORY_AND_DISK)
    cid, pid, qty = F.col("customer_id"), F.col("product_id"), F.col("quantity")
    missing = cid.isNull() | (cid == "") | pid.isNull() | (pid == "")
    cancel = ~missing & (F.coalesce(F.col("order_id").startswith("C"), F.lit(False))
                         | F.coalesce(qty < 0, F.lit(False)))
    tx = tx.withColumn("_missing", missing).withColumn("_cancel", cancel)
    undone = _undone_purchases(tx)
    tx = tx.join(undone, "_row", "left")
    rule = (F.when(F.col("_missing"), "missing_ids")
            .when(F.col("_cancel") | F.col("_undone").isNotNull(), "cancellations")
            .when(~F.coalesce(qty > 0, F.lit(False)), "non_positive_quantity")
            .when(F.coalesce(F.col("amount") <= 0, F.lit(False)), "non_positive_amount")
            .when(pid.isin(flagged), "non_product_codes"))
    if products is not None:
        known = products.select(F.col("product_id").alias("_known")).distinct()
        tx = tx.join(known, pid == F.col("_known"), "left")
        rule = rule.when(F.col("_known").isNull(), "unknown_products")
    tagged = tx.withColumn("_drop", rule).persist(StorageLevel.MEMORY_AND_DISK)
    counts = {r["_drop"]: int(r["count"]) for r in tagged.groupBy("_drop").count().collect()}
    tx.unpersist()
    if products is not None:
        codes = pd.Series([r[0] for r in products.select("product_id").collect()], dtype="str")
        products = products.where(~F.col("product_id").isin(
            codes[non_product_mask(codes)].tolist()))
    return tagged, products, counts


def _undone_purchases(tx: DataFrame) -> DataFrame:
    """``clean._cancellations``' matches: for each cancellation, the most recent purchase at
    or before it of the same customer, product and absolute quantity (ties: the later line);
    one row (``_row``, ``_undone``) per purchase undone."""
    cancels = tx.where("_cancel AND timestamp IS NOT NULL AND quantity IS NOT NULL").select(
        "customer_id", "product_id", F.abs("quantity").alias("_qty"),
        F.col("timestamp").alias("_at"), F.col("_row").alias("_by"))
    buys = tx.where(~F.col("_missing") & ~F.col("_cancel") & (F.col("quantity") > 0)) \
        .where("timestamp IS NOT NULL").select(
            "customer_id", "product_id", F.col("quantity").alias("_qty"), "timestamp", "_row")
    pairs = cancels.join(buys, ["customer_id", "product_id", "_qty"]) \
        .where(F.col("timestamp") <= F.col("_at"))
    latest = Window.partitionBy("_by").orderBy(F.col("timestamp").desc(), F.col("_row").desc())
    return pairs.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1") \
        .select("_row").distinct().withColumn("_undone", F.lit(True))


def _report(source: str, counts: dict[str, int], kept: int, products_before: int | None,
            products_after: int | None) -> CleaningReport:
    """``clean``'s report from the lines dropped per step and the lines finally kept."""
    report = CleaningReport(source=source)
    rows = sum(counts.values())
    steps = STEPS if products_before is not None else STEPS[:-1]
    for name, reason in steps:
        report.steps.append(CleaningStep(name, reason, rows, rows - counts.get(name, 0)))
        rows -= counts.get(name, 0)
    report.steps.append(CleaningStep("duplicate_lines", "exact duplicate of an earlier line",
                                     rows, kept))
    if products_before is not None and products_after is not None:
        report.steps.append(CleaningStep("non_product_codes", "postage, fees, vouchers",
                                         products_before, products_after, table="products"))
    return report


def prepare(spark: SparkSession, source: str, out: str | Path, fmt: str | None = None
            ) -> CleaningReport:
    """Read, type, clean and write ``source`` to the prepared directory ``out``: canonical
    ``transactions``, ``products`` and ``customers`` (``<table>.parquet/``), the interaction
    table and the cleaning report (``recsys.data.prepare``'s file names)."""
    out = Path(out)
    name = re.sub(r"(\.csv|\.txt)?(\.gz)?(\.parquet)?$", "", Path(source).name)
    tx, products, customers = canonical(read_lines(spark, source, fmt), source)
    tagged, cleaned_products, counts = clean_lines(tx, products)
    columns = list(TABLES["transactions"])
    kept = tagged.where(F.col("_drop").isNull()).select(*columns).dropDuplicates()
    kept.write.mode("overwrite").parquet(str(out / "transactions.parquet"))
    tagged.unpersist()
    written = spark.read.parquet(str(out / "transactions.parquet"))
    before = after = None
    if products is not None and cleaned_products is not None:
        cleaned_products.write.mode("overwrite").parquet(str(out / "products.parquet"))
        before = products.count()
        after = spark.read.parquet(str(out / "products.parquet")).count()
    if customers is not None:
        customers.write.mode("overwrite").parquet(str(out / "customers.parquet"))
    interactions(written).write.mode("overwrite").parquet(str(out / INTERACTIONS))
    report = _report(name, counts, written.count(), before, after)
    report.to_frame().to_csv(out / REPORT, index=False)
    return report


def interactions(tx: DataFrame) -> DataFrame:
    """``recsys.data.prepare.interaction_table`` in Spark."""
    return tx.groupBy("customer_id", "product_id").agg(
        F.countDistinct("order_id").alias("orders"), F.count(F.lit(1)).alias("lines"),
        F.sum("quantity").alias("quantity"), F.sum("amount").alias("amount"),
        F.min("timestamp").alias("first"), F.max("timestamp").alias("last"))


__all__ = ["canonical", "clean_lines", "interactions", "prepare", "read_lines"]
