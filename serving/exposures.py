"""Recording what an answer showed (the exposure log, ``recsys.exposures``) from a route.

``record`` only builds a row and queues it: the runtime's background writer stores it in
batches, so an answer never waits for the database.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request

from recsys.exposures import Exposure, now
from serving.loader import Served


def record(request: Request, served: Served, customer_id: str | None, mode: str,
           product_ids: Sequence[str], coupon_ids: Sequence[str] = (),
           held_out: Sequence[str] = ()) -> None:
    """Queue one exposure of an identified customer. Not logged: anonymous answers, answers
    that showed nothing, customers who withdrew consent to personalization or were erased
    (their ids are not kept again), and anything when exposure logging is off."""
    runtime = getattr(request.app.state, "runtime", None)
    writer = runtime.exposures if runtime is not None else None
    if writer is None or customer_id is None or not (product_ids or coupon_ids or held_out) \
            or not served.engine.is_personalizable(customer_id):  # also False once erased
        return
    writer.log(Exposure(str(getattr(request.state, "request_id", "")), customer_id,
                        served.variant, served.version, mode, tuple(product_ids),
                        tuple(coupon_ids), tuple(held_out), now()))


__all__ = ["record"]
