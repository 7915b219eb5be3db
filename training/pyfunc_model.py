"""The MLflow pyfunc adapter over a bundle, logged as "model from code" (no pickle).

``mlflow models predict`` / ``mlflow.pyfunc.load_model`` run this file: it reads the bundle
artifact and answers a frame of ``customer_id`` with their top products, using the same
policy code as the API, with the API's event journal applied as the API applies it
(consent, erasures, fresh events): at load, then whatever was added before each call. The
journal is the one ``recsys picks`` reads (``RECSYS_EVENTS_URL``, else
``<RECSYS_DATA_DIR>/events.db`` when that file exists).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

if TYPE_CHECKING:
    from recsys.events import EventStore


class BundleModel(PythonModel):
    """Serve ``recsys`` recommendations from the ``bundle`` artifact."""

    def load_context(self, context: PythonModelContext) -> None:
        from recsys.bundle import read_bundle
        from recsys.policy.pipeline import Engine
        from training.jobs.picks import replay_journal

        self.engine = Engine(read_bundle(context.artifacts["bundle"]))
        self.store = journal()
        self.seq = replay_journal(self.engine, self.store) if self.store else 0

    def catch_up(self) -> None:
        """Apply the journal records written since the last look."""
        if self.store is None:
            return
        changes = list(self.store.changes(self.seq))
        if changes:
            self.engine.apply_changes(changes, self.store.erased_subjects(),
                                      self.store.subject)
            self.seq = max(c.seq or 0 for c in changes)

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        self.catch_up()
        n = int((params or {}).get("n", 10))
        ids = model_input["customer_id"].astype(str).tolist()
        picks = self.engine.recommend_many(ids, n=n)
        return pd.DataFrame({"customer_id": ids,
                             "product_ids": [[p.product_id for p in r.picks] for r in picks],
                             "scores": [[p.score for p in r.picks] for r in picks],
                             "reasons": [[p.reason for p in r.picks] for r in picks]})


def journal() -> EventStore | None:
    """The API's event store, or None where there is none to honour."""
    from training.tracking import data_dir, event_store

    if os.environ.get("RECSYS_EVENTS_URL") or (data_dir() / "events.db").is_file():
        return event_store()
    return None


mlflow.models.set_model(BundleModel())
