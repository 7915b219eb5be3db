"""Prepared data: the cleaned canonical tables, the interaction table and the cleaning
report in one directory (`recsys data prepare`), which `recsys train` reads as a dataset.

``prepare`` does it in this process (``load_dataset`` + ``clean``); the Spark engine
(``recsys.data.spark_prepare``) writes the same tables from data larger than memory, each
table a directory of Parquet parts (``transactions.parquet/``), which ``load_dataset``
reads too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.data.clean import CleaningReport, clean
from recsys.data.load import load_dataset, write_dataset

INTERACTIONS = "interactions.parquet"
REPORT = "cleaning_report.csv"


def interaction_table(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per customer and product bought: distinct ``orders`` (what the ``count`` and
    ``log`` weightings of ``build_interactions`` count), ``lines``, summed ``quantity`` and
    ``amount`` (missing when every amount is unknown), ``first`` and ``last`` purchase."""
    grouped = transactions.groupby(["customer_id", "product_id"], sort=True, observed=True)
    table = grouped.agg(orders=("order_id", "nunique"), lines=("order_id", "size"),
                        quantity=("quantity", "sum"), amount=("amount", "sum"),
                        known=("amount", "count"), first=("timestamp", "min"),
                        last=("timestamp", "max")).reset_index()
    table["amount"] = table["amount"].where(table.pop("known") > 0)
    return table


def prepare(source: str, out: str | Path) -> CleaningReport:
    """Load ``source``, clean it and write the prepared directory ``out``."""
    cleaned, report = clean(load_dataset(source))
    out = Path(out)
    write_dataset(cleaned, out, "parquet")
    interaction_table(cleaned.transactions).to_parquet(out / INTERACTIONS, index=False)
    report.to_frame().to_csv(out / REPORT, index=False)
    return report


__all__ = ["INTERACTIONS", "REPORT", "interaction_table", "prepare"]
