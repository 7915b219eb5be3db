"""``GET /v1/customers/{customer_id}/coupons``: coupon choice lives in ``recsys.coupons``."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request

from serving.deps import CustomerId, ModelsDep, N
from serving.exposures import record
from serving.loader import Served
from serving.routers import answered
from serving.schemas import CouponPublic, CouponsPublic
from serving.security import scoped_router

router = scoped_router("read", tags=["coupons"])


def coupon_picks(served: Served, customer_ids: Sequence[str], n: int
                 ) -> tuple[list[list[CouponPublic]], list[list[str]]]:
    """The engine's coupon choice for each customer, each quoted against the full budgets
    (consent is the engine's rule), and the coupon ids withheld by holdout groups."""
    rows = served.engine.coupons_many(customer_ids, n, held_out=True)
    return ([[CouponPublic(coupon_id=c.coupon_id, kind=c.kind, value=c.value, score=c.score,
                           p_redeem=c.p_redeem, rule=c.rule, reason=c.reason)
              for c in picks if not c.held_out] for picks in rows],
            [[c.coupon_id for c in picks if c.held_out] for picks in rows])


@router.get("/customers/{customer_id}/coupons", response_model=CouponsPublic)
async def coupons(request: Request, customer_id: CustomerId, models: ModelsDep, n: N = 3
                  ) -> CouponsPublic:
    """Coupons chosen for a customer (none targeted when personalization is refused)."""
    served = models.route(customer_id)
    request.state.variant = served.variant  # an error from here on counts against it
    (picks,), (held,) = coupon_picks(served, [customer_id], n)
    record(request, served, customer_id, "coupons", (), [c.coupon_id for c in picks], held)
    return CouponsPublic(customer_id=customer_id, coupons=picks, **answered(request, served))
