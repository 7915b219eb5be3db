"""``GET /v1/customers/{customer_id}/recommendations`` and its batch form,
``POST /v1/batch/recommendations`` (same answers, many customers per call)."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import HTTPException, Query, Request, status
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import Response

from serving.deps import ID_MAX, CustomerId, ModelsDep, RequestIdDep, SettingsDep
from serving.exposures import record
from serving.loader import Served
from serving.routers import answered
from serving.routers.coupons import coupon_picks
from serving.schemas import (
    BatchRecommendationsPublic,
    BatchRecommendationsRequest,
    ItemPublic,
    RecommendationsPublic,
    RecommendationsQuery,
    storable,
)
from serving.security import scoped_router

router = scoped_router("read", tags=["recommendations"])


def answer(request: Request, served: Served, customer_ids: list[str],
           query: RecommendationsQuery) -> list[RecommendationsPublic]:
    """``served``'s answers for ``customer_ids``, in order (one engine call for all)."""
    request.state.variant = served.variant  # an error from here on counts against it
    results = served.engine.recommend_many(
        customer_ids, query.n, category=query.category, min_price=query.min_price,
        max_price=query.max_price, exclude_purchased=query.exclude_purchased, mode=query.mode)
    hits = sum(r.cached for r in results)
    cache = request.app.state.metrics.answer_cache
    if hits:
        cache.labels(served.variant, "hit").inc(hits)
    if hits < len(results):
        cache.labels(served.variant, "miss").inc(len(results) - hits)
    coupons, held = coupon_picks(served, customer_ids, query.n) if query.include_coupons \
        else ([None] * len(customer_ids), [[]] * len(customer_ids))
    mode = "recommendations" + (f":{query.mode}" if query.mode else "")
    for customer_id, result, picks, withheld in zip(customer_ids, results, coupons, held,
                                                    strict=True):
        record(request, served, customer_id, mode, [p.product_id for p in result.picks],
               [c.coupon_id for c in picks or ()], withheld)
    return [RecommendationsPublic(
        customer_id=customer_id, items=[ItemPublic.of(p) for p in result.picks],
        personalized=result.personalized, fallback=result.fallback, coupons=picks,
        **answered(request, served, result.fallback))
        for customer_id, result, picks in zip(customer_ids, results, coupons, strict=True)]


@router.get("/customers/{customer_id}/recommendations", response_model=RecommendationsPublic)
async def recommend(request: Request, customer_id: CustomerId, models: ModelsDep,
                    query: Annotated[RecommendationsQuery, Query()]) -> RecommendationsPublic:
    """Top products for a customer; unknown customers get the cold-start answer."""
    return answer(request, models.route(customer_id), [customer_id], query)[0]


QUERY_FIELDS = frozenset(RecommendationsQuery.model_fields)


def plain_query(query_string: bytes) -> RecommendationsQuery | None:
    """The options of a query string that only names known options, each once, with valid
    values (parsed as Starlette does); None for any other, which FastAPI then parses."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    options = dict(pairs)
    if len(options) < len(pairs) or not options.keys() <= QUERY_FIELDS:
        return None
    try:
        return RecommendationsQuery.model_validate(options)
    except ValidationError:
        return None


def recommend_fast(request: Request, route: APIRoute) -> Response | None:
    """``recommend`` without FastAPI's parameter parsing and dependencies, for a valid id and
    a plain query with a model loaded; None leaves the request to FastAPI (errors included).
    The body is encoded by the route's own response field, as FastAPI does."""
    customer_id = request.path_params.get("customer_id")
    runtime = getattr(request.app.state, "runtime", None)
    models = runtime.models if runtime is not None else None
    if not isinstance(customer_id, str) or not 0 < len(customer_id) <= ID_MAX \
            or models is None or (query := plain_query(request.scope["query_string"])) is None:
        return None
    try:
        storable(customer_id)
    except ValueError:
        return None
    public = answer(request, models.route(customer_id), [customer_id], query)[0]
    field = route.response_field
    assert field is not None
    value, errors = field.validate(public, {}, loc=("response",))
    if errors:
        raise ResponseValidationError(errors=errors, body=public)
    return Response(field.serialize_json(
        value, include=route.response_model_include, exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none), media_type="application/json")


recommend.fast_path = recommend_fast  # type: ignore[attr-defined]  # see AuthRoute


@router.post("/batch/recommendations", response_model=BatchRecommendationsPublic,
             responses={413: {"description": "More customers than RECSYS_MAX_BATCH_CUSTOMERS"}})
def recommend_batch(request: Request, body: BatchRecommendationsRequest, models: ModelsDep,
                    settings: SettingsDep, request_id: RequestIdDep
                    ) -> BatchRecommendationsPublic:
    """Recommendations for a small audience; each answer equals the single endpoint's."""
    limit = settings.max_batch_customers
    if len(body.customer_ids) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"a batch holds at most {limit} customers; got "
                            f"{len(body.customer_ids)}. Split it, or use `recsys picks` for "
                            "large audiences.")
    rows: dict[str, list[int]] = defaultdict(list)  # variant -> positions in the request
    served_by: dict[str, Served] = {}
    for row, customer_id in enumerate(body.customer_ids):
        served = models.route(customer_id)
        rows[served.variant].append(row)
        served_by[served.variant] = served
    results: list[RecommendationsPublic | None] = [None] * len(body.customer_ids)
    for variant, positions in rows.items():
        ids = [body.customer_ids[r] for r in positions]
        for r, public in zip(positions, answer(request, served_by[variant], ids, body),
                             strict=True):
            results[r] = public
    if len(rows) > 1:
        request.state.variant = "mixed"  # the latency histogram's label for this request
    return BatchRecommendationsPublic(results=[r for r in results if r is not None],
                                      request_id=request_id)
