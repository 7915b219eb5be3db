"""``GET /v1/customers/{customer_id}/coupons``: coupon choice lives in ``recsys.coupons``."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request

from serving.deps import CustomerId, ModelsDep, N
from serving.loader import Served
from serving.routers import answered
from serving.schemas import CouponPublic, CouponsPublic

router = APIRouter(tags=["coupons"])


def coupon_picks(served: Served, customer_ids: Sequence[str], n: int
                 ) -> list[list[CouponPublic]]:
    """The engine's coupon choice for each customer, each quoted against the full budgets
    (consent is the engine's rule)."""
    return [[CouponPublic(coupon_id=c.coupon_id, kind=c.kind, value=c.value, score=c.score,
                          p_redeem=c.p_redeem, rule=c.rule, reason=c.reason) for c in picks]
            for picks in served.engine.coupons_many(customer_ids, n)]


@router.get("/customers/{customer_id}/coupons", response_model=CouponsPublic)
async def coupons(request: Request, customer_id: CustomerId, models: ModelsDep, n: N = 3
                  ) -> CouponsPublic:
    """Coupons chosen for a customer (none targeted when personalization is refused)."""
    served = models.route(customer_id)
    (picks,) = coupon_picks(served, [customer_id], n)
    return CouponsPublic(customer_id=customer_id, coupons=picks, **answered(request, served))
