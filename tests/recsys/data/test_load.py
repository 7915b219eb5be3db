"""recsys.data.load: files and sources -> typed canonical frames; malformed input -> DataError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys.data.load import MAX_PROBLEMS, load_dataset, read_table, write_dataset
from recsys.data.schema import TABLES, RetailData
from recsys.data.sources import conform
from recsys.errors import DataError
from training.commands import data as data_cli

RETAIL = "online_retail/online_retail.csv.gz"
II_NAMES = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}


def _transactions_csv(path: Path, rows: list[str]) -> Path:
    header = "order_id,customer_id,product_id,quantity,amount,timestamp,store_id"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


GOOD_ROWS = ["o1,c1,p1,2,3.5,2024-01-02 10:00:00,s1",
             "o1,c1,p2,1,1.25,2024-01-02 10:00:00,s1",
             "o2,c2,p1,1,1.75,2024-01-05 12:30:00,"]


def test_read_table_types_and_defaults(tmp_path: Path) -> None:
    tx = read_table(_transactions_csv(tmp_path / "t.csv", GOOD_ROWS), "transactions")
    assert list(tx.columns) == list(TABLES["transactions"])
    assert tx["quantity"].dtype == np.float64 and tx["timestamp"].dtype == "datetime64[ns]"
    assert tx["customer_id"].tolist() == ["c1", "c1", "c2"]
    assert tx["store_id"].tolist() == ["s1", "s1", "online"]  # empty optional -> default
    assert tx["timestamp"].iloc[2] == pd.Timestamp("2024-01-05 12:30:00")


def test_read_table_fills_missing_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text("product_id,title,price,available\n10,Tea,2.5,no\n11,Milk,,yes\n")
    p = read_table(path, "products")
    assert list(p.columns) == list(TABLES["products"])
    assert p["available"].tolist() == [False, True]
    assert np.isnan(p["price"].iloc[1]) and p["brand"].tolist() == ["", ""]


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_read_table_same_frame_from_each_format(tmp_path: Path, fmt: str) -> None:
    ref = read_table(_transactions_csv(tmp_path / "ref.csv", GOOD_ROWS), "transactions")
    path = tmp_path / f"t.{fmt}"
    if fmt == "parquet":
        ref.to_parquet(path)
    else:
        ref.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_table(path, "transactions"), ref)


def test_read_table_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("order_id,customer_id,product_id,amount,timestamp\no1,c1,p1,1.0,2024-01-01\n")
    with pytest.raises(DataError, match=r"t\.csv: missing required column\(s\) quantity") as e:
        read_table(path, "transactions")
    assert e.value.problems == [(str(path), None, "quantity", "missing required column")]


def test_read_table_bad_date_names_row_and_column(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, "o3,c3,p3,1,1.0,yesterday,s1"]
    path = _transactions_csv(tmp_path / "t.csv", rows)
    with pytest.raises(DataError) as e:
        read_table(path, "transactions")
    assert "t.csv" in str(e.value) and "row 4" in str(e.value)
    assert "column timestamp" in str(e.value)
    assert e.value.problems == [(str(path), 4, "timestamp", "'yesterday' is not a date")]


def test_read_table_wrong_type_and_empty_required_cell(tmp_path: Path) -> None:
    rows = ["o1,c1,p1,two,3.5,2024-01-02,s1", "o2,c1,,1,1.0,2024-01-02,s1"]
    path = _transactions_csv(tmp_path / "t.csv", rows)
    with pytest.raises(DataError, match=r"first at row 1, column quantity") as e:
        read_table(path, "transactions")
    assert e.value.problems == [
        (str(path), 1, "quantity", "'two' is not a number"),
        (str(path), 2, "product_id", "empty value in a required column"),
    ]


def test_read_table_caps_problem_list_and_counts_the_rest(tmp_path: Path) -> None:
    rows = [f"o{i},c1,p1,x,1.0,2024-01-02,s1" for i in range(MAX_PROBLEMS + 15)]
    with pytest.raises(DataError, match=f"{MAX_PROBLEMS + 15} malformed") as e:
        read_table(_transactions_csv(tmp_path / "t.csv", rows), "transactions")
    assert len(e.value.problems) == MAX_PROBLEMS + 1
    assert e.value.problems[-1][3] == "... and 15 more problem(s)"


def test_read_table_ragged_csv_is_a_data_error(tmp_path: Path) -> None:
    path = _transactions_csv(tmp_path / "t.csv", [*GOOD_ROWS, "o9,c9,p9,1,1.0,2024-01-01,s,x"])
    with pytest.raises(DataError, match=r"t\.csv: cannot be read as csv at row 4"):
        read_table(path, "transactions")


def test_read_table_parquet_wrong_type(tmp_path: Path) -> None:
    frame = pd.DataFrame({"order_id": ["o1", "o2"], "customer_id": [1.0, np.nan],
                          "product_id": ["p1", "p2"], "quantity": ["1", "lots"],
                          "amount": [1.0, 2.0], "timestamp": pd.to_datetime(["2024-01-01"] * 2)})
    frame.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"row 2, column quantity: 'lots' is not a number"):
        read_table(tmp_path / "t.parquet", "transactions")


# -- Online Retail (real rows) ------------------------------------------------------------

@pytest.fixture(scope="module")
def retail_rows(request: pytest.FixtureRequest) -> pd.DataFrame:
    """The first 3,000 raw lines of UCI Online Retail (includes cancellations and guests)."""
    shared = request.getfixturevalue("shared_data")
    return pd.read_csv(shared / RETAIL, dtype=str, nrows=3000, keep_default_na=False)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.data
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
@pytest.mark.parametrize("convention", ["I", "II"])
def test_online_retail_both_conventions_and_formats(retail_rows: pd.DataFrame, tmp_path: Path,
                                                    suffix: str, convention: str) -> None:
    ref = load_dataset(_write(retail_rows, tmp_path / "ref.csv"))
    raw = retail_rows.rename(columns=II_NAMES) if convention == "II" else retail_rows
    got = load_dataset(_write(raw, tmp_path / f"retail{suffix}"))
    for table in ("transactions", "products", "customers"):
        pd.testing.assert_frame_equal(getattr(got, table), getattr(ref, table))
    tx = got.transactions
    assert len(tx) == 3000
    first = retail_rows.iloc[0]
    assert tx["order_id"].iloc[0] == first["InvoiceNo"]
    assert tx["product_id"].iloc[0] == first["StockCode"]
    assert tx["amount"].iloc[0] == pytest.approx(float(first["Quantity"]) *
                                                 float(first["UnitPrice"]))
    assert not tx["customer_id"].dropna().str.endswith(".0").any()
    assert tx["order_id"].str.startswith("C").any()  # cancellations kept for clean()


@pytest.mark.data
def test_online_retail_float_customer_ids_in_parquet(retail_rows: pd.DataFrame,
                                                     tmp_path: Path) -> None:
    raw = retail_rows.assign(CustomerID=pd.to_numeric(retail_rows["CustomerID"]),
                             Quantity=pd.to_numeric(retail_rows["Quantity"]))
    got = load_dataset(_write(raw, tmp_path / "r.parquet")).transactions["customer_id"]
    assert got.iloc[0] == str(int(raw["CustomerID"].iloc[0]))
    assert got.isna().sum() == (retail_rows["CustomerID"] == "").sum()


@pytest.mark.data
def test_online_retail_malformed_rows(retail_rows: pd.DataFrame, tmp_path: Path) -> None:
    raw = retail_rows.copy()
    raw.loc[41, "InvoiceDate"] = "31/31/2011 99:99"
    raw.loc[7, "UnitPrice"] = "cheap"
    path = _write(raw, tmp_path / "bad.csv.gz")
    with pytest.raises(DataError, match=r"bad\.csv\.gz: 2 malformed value\(s\); first at row 8, "
                                        r"column UnitPrice") as e:
        load_dataset(path)
    assert [(r, c) for _f, r, c, _w in e.value.problems] == [(8, "UnitPrice"),
                                                             (42, "InvoiceDate")]


@pytest.mark.data
def test_online_retail_missing_column(retail_rows: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(retail_rows.drop(columns="InvoiceDate"), tmp_path / "r.csv")
    with pytest.raises(DataError, match=r"r\.csv: missing required column\(s\) InvoiceDate"):
        load_dataset(path)


@pytest.mark.data
def test_online_retail_other_date_format(retail_rows: pd.DataFrame, tmp_path: Path) -> None:
    stamps = pd.to_datetime(retail_rows["InvoiceDate"])
    raw = retail_rows.assign(InvoiceDate=[f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"
                                          for t in stamps])
    got = load_dataset(_write(raw, tmp_path / "r.csv")).transactions["timestamp"]
    assert (got.to_numpy() == stamps.astype("datetime64[ns]").to_numpy()).all()


# -- generic interactions, directories, named sources -------------------------------------

def test_interactions_file_minimal_columns(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("customer_id,product_id,timestamp\n7,a,2024-03-01\n7,b,2024-03-01\n"
                    "8,a,2024-03-02T09:00:00\n")
    tx = load_dataset(path).transactions
    assert tx["quantity"].tolist() == [1.0, 1.0, 1.0] and tx["amount"].isna().all()
    assert tx["order_id"].nunique() == 2  # one order per customer and timestamp
    assert tx["timestamp"].iloc[2] == pd.Timestamp("2024-03-02 09:00")


def test_interactions_file_with_optional_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"customer_id": ["u1", "u2"], "product_id": ["x", "y"],
                          "timestamp": ["2024-01-01", "2024-01-02"], "quantity": [3, 1],
                          "amount": [9.0, 2.0], "extra": [0, 0]})
    tx = load_dataset(_write(frame, tmp_path / "i.parquet")).transactions
    assert list(tx.columns) == list(TABLES["transactions"])
    assert tx["amount"].tolist() == [9.0, 2.0] and tx["quantity"].tolist() == [3.0, 1.0]


def _tiny_data() -> RetailData:
    frame = pd.DataFrame({"order_id": ["1", "1", "2"], "customer_id": ["a", "a", "b"],
                          "product_id": ["p", "q", "p"], "quantity": [1.0, 2.0, 1.0],
                          "amount": [0.1, 2 / 3, 1e-7],
                          "timestamp": pd.to_datetime(["2024-01-01 10:00:00.123456",
                                                       "2024-01-01 10:00:00.123456",
                                                       "2024-02-01 00:00:00"], format="ISO8601"),
                          "store_id": ["s", "s", "online"]})
    products = conform(pd.DataFrame({"product_id": ["p", "q"], "title": ["Pen, blue", ""],
                                     "price": [0.1, np.nan], "available": [True, False],
                                     "attributes": ["size=S; colour=\"blue\"", ""]}),
                       "products")
    return RetailData("tiny", conform(frame, "transactions"), products=products)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_dataset_round_trip(tmp_path: Path, fmt: str) -> None:
    data = _tiny_data()
    files = write_dataset(data, tmp_path / "ds", fmt=fmt)
    assert {f.name for f in files} == {f"{t}.{fmt}" for t in TABLES if t != "events"}
    back = load_dataset(tmp_path / "ds")
    for table in ("transactions", "products", "customers", "campaigns", "coupons", "offers",
                  "redemptions"):
        pd.testing.assert_frame_equal(getattr(back, table), getattr(data, table))


def test_directory_without_transactions(tmp_path: Path) -> None:
    (tmp_path / "products.csv").write_text("product_id\n1\n")
    with pytest.raises(DataError, match="needs transactions.parquet"):
        load_dataset(tmp_path)


def test_unknown_source_lists_what_is_accepted() -> None:
    with pytest.raises(DataError, match="unknown source; accepted sources are 'completejourney'"):
        load_dataset("movielens")
    with pytest.raises(DataError, match="no such file or directory"):
        load_dataset("/nowhere/data.csv")


def test_unknown_file_layout(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"columns \['a', 'b'\] match no known layout"):
        load_dataset(path)


def test_synthetic_spec_must_be_name_equals_integer() -> None:
    with pytest.raises(DataError, match="name=INTEGER"):
        load_dataset("synthetic:customers=many")


def test_synthetic_source_calls_generator() -> None:
    pytest.importorskip("recsys.data.synthetic", reason="recsys.data.synthetic not written yet")
    data = load_dataset("synthetic:customers=60,products=30,seed=3")
    assert data.transactions["customer_id"].nunique() <= 60
    assert data.transactions["product_id"].nunique() <= 30
    with pytest.raises(DataError, match="unknown synthetic parameter"):
        load_dataset("synthetic:colour=3")


# -- CLI ----------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_validate_ok_is_one_line(tmp_path: Path) -> None:
    path = _transactions_csv(tmp_path / "t.csv", GOOD_ROWS)
    result = runner.invoke(data_cli.app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == [
        f"OK: {path}: 3 transaction lines, 0 products, 0 customers in the canonical schema"]


def test_cli_validate_malformed_exits_2_with_row_reasons(tmp_path: Path) -> None:
    path = _transactions_csv(tmp_path / "t.csv", [*GOOD_ROWS, "o3,c3,p3,1,abc,2024-13-45,s"])
    result = runner.invoke(data_cli.app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "row 4, column amount: 'abc' is not a number" in result.stderr
    assert "row 4, column timestamp: '2024-13-45' is not a date" in result.stderr
    assert "Traceback" not in result.output


def test_cli_describe_unknown_source_exits_2_with_one_line() -> None:
    result = runner.invoke(data_cli.app, ["describe", "no-such-dataset"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: 'no-such-dataset': unknown source")


def test_cli_describe_prints_steps_and_summaries(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, "C9,c1,p1,-2,-3.5,2024-01-03 10:00:00,s1", GOOD_ROWS[1]]
    path = _transactions_csv(tmp_path / "t.csv", rows)
    result = runner.invoke(data_cli.app, ["describe", str(path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for step in ("missing_ids", "cancellations", "non_positive_quantity", "duplicate_lines"):
        assert step in out
    assert "raw" in out and "2 customers x        2 products,           5 lines" in out
    # cancellation + its purchase and the duplicate go: 2 lines left, 2 orders, 2024-01-02..05
    assert "cleaned" in out and "2 lines,         2 orders" in out
    assert "2024-01-02 .. 2024-01-05" in out


def test_cli_help_on_each_command() -> None:
    for cmd in ("describe", "validate"):
        result = runner.invoke(data_cli.app, [cmd, "--help"])
        assert result.exit_code == 0 and "SOURCE" in result.stdout


def test_spreadsheet_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "online_retail_II.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(DataError, match=r"unsupported file type; use \.csv, \.csv\.gz or "
                                        r"\.parquet \(convert spreadsheets"):
        load_dataset(path)
