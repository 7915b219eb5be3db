"""``GET /v1/products/{product_id}/similar``."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from recsys.errors import UnknownIdError
from serving.deps import Category, ModelsDep, N, ProductId
from serving.routers import answered
from serving.schemas import ItemPublic, SimilarPublic
from serving.security import scoped_router

router = scoped_router("read", tags=["products"])


@router.get("/products/{product_id}/similar", response_model=SimilarPublic,
            responses={404: {"description": "The product is not in the model's catalog"}})
async def similar(request: Request, product_id: ProductId, models: ModelsDep, n: N = 10,
                  category: Category = None) -> SimilarPublic:
    """Products similar to a product (faiss index over item vectors when available)."""
    served = models.champion
    served.engine.check_question(n)  # Served.similar may answer from its index
    try:
        picks = served.similar(product_id, n, category=category)
    except UnknownIdError:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"product {product_id!r} is not in the catalog of model version "
                            f"{served.version}") from None
    return SimilarPublic(product_id=product_id, items=[ItemPublic.of(p) for p in picks],
                         **answered(request, served))
