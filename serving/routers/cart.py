"""``POST /v1/cart/recommendations``: cross-sell for a basket, anonymous or not."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from serving.deps import ModelsDep, N, SettingsDep
from serving.exposures import record
from serving.routers import answered
from serving.schemas import CartPublic, CartRequest, ItemPublic
from serving.security import scoped_router

router = scoped_router("read", tags=["cart"])


@router.post("/cart/recommendations", response_model=CartPublic)
async def cart(request: Request, body: CartRequest, models: ModelsDep, settings: SettingsDep,
               n: N = 10) -> CartPublic:
    """Add-ons that go with a basket; works for anonymous shoppers too."""
    if len(body.product_ids) > settings.max_cart_items:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"a basket holds at most {settings.max_cart_items} products; got "
                            f"{len(body.product_ids)}")
    served = models.route(body.customer_id)
    request.state.variant = served.variant  # an error from here on counts against it
    engine = served.engine
    ignored = [p for p in body.product_ids if p not in engine.products]
    result = engine.cart(body.product_ids, n, customer_id=body.customer_id)
    record(request, served, body.customer_id, "cart", [p.product_id for p in result.picks])
    return CartPublic(items=[ItemPublic.of(p) for p in result.picks],
                      personalized=result.personalized, fallback=result.fallback,
                      ignored_product_ids=ignored, **answered(request, served, result.fallback))
