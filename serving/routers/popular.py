"""``GET /v1/popular``."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Query, Request, status

from serving.deps import Category, ModelsDep, N
from serving.routers import answered
from serving.schemas import ItemPublic, PopularPublic
from serving.security import scoped_router

router = scoped_router("read", tags=["popular"])


@router.get("/popular", response_model=PopularPublic)
async def popular(request: Request, models: ModelsDep, n: N = 10, category: Category = None,
                  window: Annotated[str, Query(min_length=1, max_length=32)] = "all"
                  ) -> PopularPublic:
    """Best sellers, optionally in a category and over a recent window (e.g. 7d)."""
    served = models.champion
    windows = sorted(served.engine.bundle.popularity)
    if window not in windows:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"window {window!r} is unknown; use one of {windows}")
    picks = served.engine.popular(n, category=category, window=window)
    return PopularPublic(window=window, category=category,
                         items=[ItemPublic.of(p) for p in picks], **answered(request, served))
