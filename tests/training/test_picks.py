"""Batch picks: audiences, consent and erasure, the journal, coupons and budget, resumption
after a crash, file formats."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.errors import DataError
from recsys.events import Consent, Erasure, Event, EventStore
from recsys.policy.pipeline import Engine
from tests.configs import repo_config
from training.jobs.bundle import build_bundle
from training.jobs.picks import (
    PicksJob,
    budget_share,
    replay_journal,
    select_audience,
    write_picks,
)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = generate(n_customers=300, n_products=120, seed=1)
    cfg = repo_config("als", factors=8, iterations=3)
    out = tmp_path_factory.mktemp("picks") / "bundle"
    build_bundle(data, cfg, out)
    return out


@pytest.fixture()
def engine(bundle_dir: Path) -> Engine:
    return Engine(read_bundle(bundle_dir))


class Crash(RuntimeError):
    pass


def test_picks_match_the_engine_for_each_customer(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "picks.parquet"
    summary = write_picks(engine, "all", out, n=5, chunk_size=64, run_id="r1")
    frame = pd.read_parquet(out)
    assert summary.written == len(frame) == summary.audience - summary.skipped_no_consent \
        - summary.skipped_erased - summary.skipped_no_marketing
    for row in frame.sample(20, random_state=0).itertuples():
        result = engine.recommend(row.customer_id, 5)
        assert list(row.product_ids) == [p.product_id for p in result.picks]
        assert [float(s) for s in row.scores] == [p.score for p in result.picks]
        assert list(row.reasons) == [p.reason for p in result.picks]
        assert list(row.reason_codes) == [p.reason_code for p in result.picks]
        assert row.personalized == result.personalized
    assert set(frame["model_version"]) == {engine.version} and set(frame["run_id"]) == {"r1"}
    assert 0 < summary.coverage <= 1
    assert not out.with_name(out.name + ".parts").exists()


def test_opted_out_erased_and_no_marketing_customers_get_nothing(engine: Engine,
                                                                  tmp_path: Path) -> None:
    frame = engine.bundle.customers
    ids = frame.loc[frame["consent_personalization"] & frame["consent_marketing"],
                    "customer_id"].tolist()[:10]
    engine.set_consent(ids[0], False)
    engine.erase(ids[1])
    frame.loc[frame["customer_id"] == ids[2], "consent_marketing"] = False
    out = tmp_path / "picks.csv"
    summary = write_picks(engine, "ids=" + ",".join(ids), out, n=3)
    frame = pd.read_csv(out, dtype={"customer_id": str})
    assert frame["customer_id"].tolist() == ids[3:]
    assert (summary.skipped_no_consent, summary.skipped_erased,
            summary.skipped_no_marketing) == (1, 1, 1)
    assert all(len(json.loads(v)) == 3 for v in frame["product_ids"])


def test_the_journal_applies_as_in_the_api(engine: Engine) -> None:
    a, b = engine.customers.ids[:2].tolist()
    c, offer = next((c, o[0].coupon_id) for c in engine.customers.ids[2:].tolist()
                    if (o := engine.coupons(c, 1)))
    product = str(engine.product_ids[0])
    now = datetime(2030, 1, 1)
    erased: set[str] = set()
    engine.apply_changes([
        Erasure(a, 1),
        Event("e1", a, "purchase", now, product_id=product, seq=2),  # waits for training
        Consent(b, False, 3),
        Event("e2", c, "coupon_redeemed", now, coupon_id=offer, seq=4),
    ], erased)
    assert erased == {a}
    assert not engine.is_personalizable(a) and not engine.is_personalizable(b)
    assert engine.recommend(a, 3).fallback == "not_personalized"
    assert offer not in [p.coupon_id for p in engine.coupons(c, 3)]


def test_a_crash_halfway_resumes_to_the_same_file(engine: Engine, tmp_path: Path) -> None:
    whole = tmp_path / "whole.parquet"
    write_picks(engine, "all", whole, n=4, coupons=1, chunk_size=50, run_id="run-a")

    out = tmp_path / "resumed.parquet"
    done: list[int] = []

    def crash_after_three_chunks(count: int) -> None:
        done.append(count)
        if len(done) == 3:
            raise Crash

    with pytest.raises(Crash):
        write_picks(engine, "all", out, n=4, coupons=1, chunk_size=50, run_id="run-a",
                    progress=crash_after_three_chunks)
    assert not out.exists()  # never a half-written output
    job = PicksJob.prepare(engine, "all", out, n=4, coupons=1, chunk_size=50)
    assert job.resumable_run_id() == "run-a" and job.done_chunks() == 3
    summary = job.run("another-run")
    assert summary.chunks_resumed == 3
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(whole))


def test_coupons_spend_one_campaign_budget(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "picks.jsonl"
    summary = write_picks(engine, "all", out, n=3, coupons=1, chunk_size=40)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == summary.written
    assert summary.coupons_issued == sum(len(r["coupon_ids"]) for r in rows) > 0
    assert all(len(r["coupon_ids"]) == len(r["coupon_reasons"]) <= 1 for r in rows)
    assert all(r["coupon_reasons"][0] for r in rows if r["coupon_ids"])
    assert 0 < summary.coupon_budget_used <= summary.coupon_budget


def test_csv_and_jsonl_hold_what_parquet_holds(engine: Engine, tmp_path: Path) -> None:
    frames = {}
    for suffix in ("parquet", "csv", "jsonl"):
        out = tmp_path / f"picks.{suffix}"
        write_picks(engine, "stage=active,loyal", out, n=3, coupons=1, run_id="r")
        if suffix == "parquet":
            frame = pd.read_parquet(out)
        elif suffix == "csv":
            frame = pd.read_csv(out, dtype={"customer_id": str, "model_version": str})
            for col in ("product_ids", "scores", "reasons", "reason_codes", "coupon_ids",
                        "coupon_reasons"):
                frame[col] = frame[col].map(json.loads)
        else:
            frame = pd.read_json(out, lines=True, dtype={"customer_id": str,
                                                         "model_version": str})
        frames[suffix] = frame.map(lambda v: [float(x) if isinstance(x, np.floating) else x
                                              for x in v] if isinstance(v, np.ndarray | list)
                                   else v)
    assert len(frames["parquet"]) > 0
    for suffix in ("csv", "jsonl"):
        pd.testing.assert_frame_equal(frames[suffix], frames["parquet"], check_dtype=False)


def test_audiences(engine: Engine, tmp_path: Path) -> None:
    frame = engine.bundle.customers
    everyone = select_audience(engine, "all")
    assert list(everyone) == frame["customer_id"].tolist()
    for key in ("segment", "stage", "tier"):
        value = frame[key].iloc[0]
        assert list(select_audience(engine, f"{key}={value}")) == \
            frame.loc[frame[key] == value, "customer_id"].tolist()
    recent = select_audience(engine, "recency<=30")
    assert set(recent) == set(frame.loc[frame["recency_days"] <= 30, "customer_id"])
    lapsed = select_audience(engine, "recency>=30&stage=churned,at_risk")
    assert set(lapsed) == set(frame.loc[(frame["recency_days"] >= 30) & frame["stage"].isin(
        ["churned", "at_risk"]), "customer_id"])
    ids = frame["customer_id"].tolist()
    listed = tmp_path / "ids.txt"
    listed.write_text(f"{ids[5]}\n\n{ids[1]}\nnobody\n{ids[5]}\n")
    assert list(select_audience(engine, f"@{listed}")) == [ids[5], ids[1], "nobody"]
    assert list(select_audience(engine, f"ids={ids[2]},{ids[3]}")) == ids[2:4]


@pytest.mark.parametrize(("audience", "message"), [
    ("colour=red", "not understood"), ("stage=actve", "no customer has stage"),
    ("recency<=soon", "not a number"), ("@/no/such/file", "does not exist"),
    ("ids=a&ids=b", "at most one id list"), ("", "at least one term")])
def test_bad_audiences_are_refused_with_a_sentence(engine: Engine, audience: str,
                                                   message: str) -> None:
    with pytest.raises(DataError, match=message):
        select_audience(engine, audience)


def test_unknown_customers_of_an_id_list_get_the_cold_start_answer(engine: Engine,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "picks.parquet"
    write_picks(engine, "ids=nobody", out, n=3)
    row = pd.read_parquet(out).iloc[0]
    assert row["customer_id"] == "nobody" and not row["personalized"]
    assert list(row["product_ids"]) == [p.product_id for p in engine.popular(3)]


def test_output_must_be_a_known_format(engine: Engine) -> None:
    with pytest.raises(DataError, match="must end in"):
        write_picks(engine, "all", Path("picks.xlsx"))


def test_out_of_stock_products_are_never_picked(bundle_dir: Path, tmp_path: Path) -> None:
    bundle = read_bundle(bundle_dir)
    out = tmp_path / "before.parquet"
    write_picks(Engine(bundle), "all", out, n=5)
    favourites = pd.read_parquet(out)["product_ids"].explode().value_counts().index[:5]
    bundle.products.loc[bundle.products["product_id"].isin(favourites), "available"] = False
    write_picks(Engine(bundle), "all", out, n=5)
    assert not set(pd.read_parquet(out)["product_ids"].explode()) & set(favourites)


def test_bought_products_are_excluded_per_policy_or_on_request(engine: Engine,
                                                               tmp_path: Path) -> None:
    def overlaps(frame: pd.DataFrame) -> pd.Series:
        rows = engine.customers.to_index(frame["customer_id"].tolist())
        history = engine.bundle.history[rows]
        bought = [set(engine.product_ids[history.indices[history.indptr[r]:
                                                         history.indptr[r + 1]]])
                  for r in range(len(rows))]
        return pd.Series([bool(set(p) & b) for p, b in zip(frame["product_ids"], bought,
                                                           strict=True)], frame.index)

    out = tmp_path / "picks.parquet"
    write_picks(engine, "all", out, n=10)
    frame = pd.read_parquet(out)
    modes = frame["customer_id"].map(lambda c: engine.policy.mode_for(engine.stage(c)))
    assert not overlaps(frame)[modes == "discover"].any()  # the policy: loyal, new, ...
    assert overlaps(frame)[modes == "mixed"].any()  # mixed modes may buy again
    write_picks(engine, "all", out, n=10, exclude_purchased=True)
    assert not overlaps(pd.read_parquet(out)).any()


def test_chunk_budget_shares_add_up_to_the_campaign_budget(engine: Engine) -> None:
    budget = engine.coupon_budget()
    assert budget is not None
    shares = [budget_share(budget, a, b, 101) for a, b in ((0, 7), (7, 50), (50, 101))]
    assert sum(s.budget for s in shares) == pytest.approx(budget.budget)
    np.testing.assert_allclose(sum(s.coupon_budget for s in shares), budget.coupon_budget)
    np.testing.assert_array_equal(sum(s.coupon_issues for s in shares), budget.coupon_issues)


def test_picks_replay_the_api_journal(engine: Engine, tmp_path: Path) -> None:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    a, b = engine.customers.ids[:2].tolist()
    store.erase(a)
    store.set_consent(b, False)
    assert replay_journal(engine, store) == store.last_seq() == 2
    store.close()
    summary = write_picks(engine, f"ids={a},{b}", tmp_path / "picks.parquet")
    assert (summary.written, summary.skipped_no_consent, summary.skipped_erased) == (0, 1, 1)


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(engine: Engine,
                                                              tmp_path: Path) -> None:
    hostile = ["=1+2", "+cmd", "-2+3", "@SUM(A1)"]
    out = tmp_path / "picks.csv"
    write_picks(engine, "ids=" + ",".join(hostile), out, n=2, run_id="r")
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert sorted(frame["customer_id"]) == sorted("'" + c for c in hostile)
    for cell in frame.to_numpy().ravel():
        assert not cell.startswith(("=", "+", "@")), cell
    assert all(float(s) >= 0 for s in json.loads(frame["scores"].iloc[0]))  # numbers stay


def test_picks_obey_the_policy_limits_like_the_api(engine: Engine, tmp_path: Path) -> None:
    engine.policy = engine.policy.model_copy(update={"max_n": 3})
    with pytest.raises(DataError, match="n must be at most 3"):
        PicksJob.prepare(engine, "all", tmp_path / "p.csv", n=4)
    with pytest.raises(DataError, match="is above max_price"):
        PicksJob.prepare(engine, "all", tmp_path / "p.csv", n=3, min_price=5.0, max_price=1.0)
