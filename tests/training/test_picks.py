"""Batch picks: audiences, consent and erasure, resumption after a crash, file formats."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.errors import DataError
from recsys.policy.pipeline import Engine
from training.config import ModelConfig, TrainConfig
from training.jobs.bundle import build_bundle
from training.jobs.picks import select_audience, write_picks

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    data = generate(n_customers=300, n_products=120, seed=1)
    cfg = TrainConfig(model=ModelConfig(name="als", params={"factors": 8, "iterations": 3}),
                      customers_config=str(REPO / "configs/customers.yaml"), coupons=None,
                      policy=str(REPO / "configs/policy.yaml"))
    out = tmp_path_factory.mktemp("picks") / "bundle"
    build_bundle(data, cfg, out)
    return out


@pytest.fixture()
def engine(bundle_dir) -> Engine:
    return Engine(read_bundle(bundle_dir))


class Crash(RuntimeError):
    pass


def test_picks_match_the_engine_for_each_customer(engine, tmp_path):
    out = tmp_path / "picks.parquet"
    summary = write_picks(engine, "all", out, n=5, chunk_size=64)
    frame = pd.read_parquet(out)
    assert summary.written == len(frame) == summary.audience - summary.skipped_no_consent
    for row in frame.sample(20, random_state=0).itertuples():
        expected = [p.product_id for p in engine.recommend(row.customer_id, 5).picks]
        assert list(row.product_ids) == expected
    assert 0 < summary.coverage <= 1
    assert not out.with_name(out.name + ".parts").exists()


def test_opted_out_and_erased_customers_get_nothing(engine, tmp_path):
    ids = engine.customers.ids[:10].tolist()
    engine.set_consent(ids[0], False)
    engine.erase(ids[1])
    out = tmp_path / "picks.csv"
    summary = write_picks(engine, "ids=" + ",".join(ids), out, n=3)
    frame = pd.read_csv(out)
    assert set(frame["customer_id"].astype(str)) == set(ids[2:])
    assert summary.skipped_no_consent == 2
    assert all(len(json.loads(v)) == 3 for v in frame["product_ids"])


def test_a_crash_halfway_resumes_to_the_same_file(engine, tmp_path):
    whole = tmp_path / "whole.parquet"
    write_picks(engine, "all", whole, n=4, chunk_size=50)

    out = tmp_path / "resumed.parquet"
    done = []

    def crash_after_three_chunks(count: int) -> None:
        done.append(count)
        if len(done) == 3:
            raise Crash

    with pytest.raises(Crash):
        write_picks(engine, "all", out, n=4, chunk_size=50, progress=crash_after_three_chunks)
    assert not out.exists()  # never a half-written output
    summary = write_picks(engine, "all", out, n=4, chunk_size=50)
    assert summary.chunks_resumed == 3
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(whole))


def test_audiences_by_stage_and_errors(engine):
    stages = engine.bundle.customers["stage"].dropna().unique()
    chosen = select_audience(engine, f"stage={stages[0]}")
    assert len(chosen) == (engine.bundle.customers["stage"] == stages[0]).sum()
    assert len(select_audience(engine, "recency<=30")) <= len(select_audience(engine, "all"))
    with pytest.raises(DataError, match="not understood"):
        select_audience(engine, "colour=red")
    with pytest.raises(DataError, match="must end in"):
        write_picks(engine, "all", Path("picks.xlsx"))
