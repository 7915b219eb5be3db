"""``GET /v1/customers/{customer_id}/recommendations``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from recsys.policy.config import Mode
from serving.deps import Category, CustomerId, ModelsDep, N
from serving.routers import answered, check_n
from serving.routers.coupons import coupon_picks
from serving.schemas import ItemPublic, RecommendationsPublic

router = APIRouter(tags=["recommendations"])
Price = Annotated[float | None, Query(ge=0, le=1e9, allow_inf_nan=False)]


@router.get("/customers/{customer_id}/recommendations", response_model=RecommendationsPublic)
def recommend(request: Request, customer_id: CustomerId, models: ModelsDep, n: N = 10,
              category: Category = None, min_price: Price = None, max_price: Price = None,
              exclude_purchased: bool | None = None, mode: Mode | None = None,
              include_coupons: bool = False) -> RecommendationsPublic:
    """Top products for a customer; unknown customers get the cold-start answer."""
    if min_price is not None and max_price is not None and min_price > max_price:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"min_price ({min_price}) is above max_price ({max_price})")
    served = models.route(customer_id)
    check_n(served.engine, n)
    result = served.engine.recommend(customer_id, n, category=category, min_price=min_price,
                                     max_price=max_price, exclude_purchased=exclude_purchased,
                                     mode=mode)
    coupons = coupon_picks(served, customer_id, n) if include_coupons else None
    return RecommendationsPublic(
        customer_id=customer_id, items=[ItemPublic.of(p) for p in result.picks],
        personalized=result.personalized, fallback=result.fallback, coupons=coupons,
        **answered(request, served, result.fallback))
