"""The MLflow pyfunc adapter over a bundle, logged as "model from code" (no pickle).

``mlflow models predict`` / ``mlflow.pyfunc.load_model`` run this file: it reads the bundle
artifact and answers a frame of ``customer_id`` with their top products, using the same
policy code as the API.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class BundleModel(PythonModel):
    """Serve ``recsys`` recommendations from the ``bundle`` artifact."""

    def load_context(self, context: PythonModelContext) -> None:
        from recsys.bundle import read_bundle
        from recsys.policy.pipeline import Engine

        self.engine = Engine(read_bundle(context.artifacts["bundle"]))

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        n = int((params or {}).get("n", 10))
        ids = model_input["customer_id"].astype(str).tolist()
        picks = self.engine.recommend_many(ids, n=n)
        return pd.DataFrame({"customer_id": ids,
                             "product_ids": [[p.product_id for p in r.picks] for r in picks],
                             "scores": [[p.score for p in r.picks] for r in picks],
                             "reasons": [[p.reason for p in r.picks] for r in picks]})


mlflow.models.set_model(BundleModel())
