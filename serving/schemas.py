"""Request and response models: the OpenAPI contract. Ids are strings everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from recsys.policy.config import Mode
from recsys.policy.pipeline import Pick


def storable(value: str) -> str:
    """Ids go into the event store: PostgreSQL text holds no NUL character and UTF-8 no lone
    surrogate, so both are refused (422) whatever the backend, rather than failing there."""
    if "\x00" in value:
        raise ValueError("ids cannot contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("ids must be valid Unicode text (no lone surrogates)") from exc
    return value


Id = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(storable)]
EventType = Literal["view", "add_to_cart", "purchase", "coupon_redeemed"]
PRODUCT_EVENTS = ("view", "add_to_cart", "purchase")
N_MAX = 100  # results per request


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemPublic(BaseModel):
    """One recommended product."""

    product_id: str
    score: float
    reason: str = Field(description="A sentence a shopper can read")
    reason_code: str = Field(description="Machine-readable reason (popular, similar, ...)")

    @classmethod
    def of(cls, pick: Pick) -> Self:
        return cls(product_id=pick.product_id, score=pick.score, reason=pick.reason,
                   reason_code=pick.reason_code)


class Attributed(BaseModel):
    """Which model answered: for attribution of online results."""

    model_version: str
    variant: str = Field(description="champion or challenger (A/B routing)")
    request_id: str


class CouponPublic(BaseModel):
    """One coupon chosen for the customer: the rule that admits it and why it was chosen."""

    coupon_id: str
    kind: str
    value: float | None = Field(description="amount or percent; null for free shipping")
    score: float = Field(description="expected value: P(redeem) x incremental margin - cost")
    p_redeem: float
    rule: str
    reason: str


class RecommendationsPublic(Attributed):
    """Products for one customer; ``fallback`` says why they are not personalized, if so."""

    customer_id: str
    items: list[ItemPublic]
    personalized: bool
    fallback: str | None = None
    coupons: list[CouponPublic] | None = None


class RecommendationsQuery(BaseModel):
    """Options of a recommendation request: the single-customer endpoint's query string
    (read as one model: a parameter each cost ~30 us per request in FastAPI)."""

    n: int = Field(10, ge=1, le=N_MAX, description="How many products per customer")
    category: str | None = Field(None, min_length=1, max_length=200,
                                 description='Category path prefix, e.g. "GROCERY"')
    min_price: float | None = Field(None, ge=0, le=1e9, allow_inf_nan=False)
    max_price: float | None = Field(None, ge=0, le=1e9, allow_inf_nan=False)
    exclude_purchased: bool | None = None
    mode: Mode | None = None
    include_coupons: bool = False


class BatchRecommendationsRequest(RecommendationsQuery):
    """Customers to answer at once, with the options of the single-customer endpoint."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[Id] = Field(
        min_length=1, description="At most RECSYS_MAX_BATCH_CUSTOMERS ids; answers keep "
                                  "this order")


class BatchRecommendationsPublic(BaseModel):
    """One answer per requested customer, each equal to the single-customer endpoint's."""

    results: list[RecommendationsPublic]
    request_id: str


class SimilarPublic(Attributed):
    """Products similar to one product."""

    product_id: str
    items: list[ItemPublic]


class PopularPublic(Attributed):
    """Best sellers over a window."""

    window: str
    category: str | None = None
    items: list[ItemPublic]


class CartRequest(_Strict):
    """A basket, optionally with the shopper's customer id."""

    product_ids: list[Id] = Field(min_length=1, description="Products in the basket")
    customer_id: Id | None = None


class CartPublic(Attributed):
    """Add-ons that go with the basket."""

    items: list[ItemPublic]
    personalized: bool
    fallback: str | None = None
    ignored_product_ids: list[str] = Field(
        default_factory=list, description="Basket products the model does not know")


class CouponsPublic(Attributed):
    """Coupons for one customer."""

    customer_id: str
    coupons: list[CouponPublic]


class EventIn(_Strict):
    """One event; product events need ``product_id``, redemptions need ``coupon_id``."""

    event_id: Id = Field(description="Unique id chosen by the sender; resending is harmless")
    customer_id: Id
    event_type: EventType
    product_id: Id | None = None
    coupon_id: Id | None = None
    timestamp: datetime | None = Field(None, description="When it happened (default: now)")
    quantity: float = Field(1.0, gt=0, le=1e6, allow_inf_nan=False)
    amount: float = Field(0.0, ge=0, le=1e9, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ids_for_type(self) -> Self:
        if self.event_type in PRODUCT_EVENTS and not self.product_id:
            raise ValueError(f"a {self.event_type} event needs a product_id")
        if self.event_type == "coupon_redeemed" and not self.coupon_id:
            raise ValueError("a coupon_redeemed event needs a coupon_id")
        return self


class EventBatch(_Strict):
    """A batch of events (at most ``RECSYS_MAX_EVENTS_PER_BATCH``)."""

    events: list[EventIn] = Field(min_length=1)


class EventRefused(BaseModel):
    """An event that was not stored, and why (e.g. its customer was erased)."""

    event_id: str
    reason: str


class EventsAccepted(BaseModel):
    """What happened to a batch: stored, duplicates (already stored), refused, folded."""

    stored: int
    duplicates: list[str]
    refused: list[EventRefused] = Field(
        default_factory=list, description="Not stored: an erased customer's events until a "
                                          "new consent (PUT /v1/customers/{id}/consent)")
    folded: int = Field(description="Events that changed a customer's history right away")
    request_id: str


class ConsentIn(_Strict):
    """The customer's choice about personalized recommendations and targeted coupons."""

    personalization: bool


class ConsentPublic(BaseModel):
    customer_id: str
    personalization: bool
    request_id: str


class ErasurePublic(BaseModel):
    """The customer is forgotten: records deleted and listed for exclusion from training."""

    customer_id: str
    records_deleted: int
    request_id: str


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"


class ModelPublic(BaseModel):
    variant: str
    model_version: str
    model: str
    n_items: int
    index: str | None = None
    index_recall: float | None = None


class ReadyPublic(BaseModel):
    """Readiness: a model is loaded and the event store is open."""

    ready: bool
    models: list[ModelPublic]
    challenger_share: float
    reload: str = Field(description="State of the last model load: loading, ok or failed")
    reload_error: str | None = None
    problems: dict[str, str] = Field(default_factory=dict)


class ErrorPublic(BaseModel):
    """Every error answer: what is wrong, as a sentence or as the list of invalid fields."""

    detail: str | list[dict[str, Any]]
    request_id: str | None = None


class ReloadPublic(BaseModel):
    started: bool = Field(description="False when a reload was already queued behind a running "
                                      "one; that queued reload loads the newest model")
    reload: str
    reload_error: str | None = None
    models: list[ModelPublic]
    request_id: str


__all__ = ["Id", "EventType", "N_MAX", "ItemPublic", "Attributed", "CouponPublic",
           "RecommendationsPublic", "BatchRecommendationsRequest", "BatchRecommendationsPublic",
           "SimilarPublic", "PopularPublic", "CartRequest", "CartPublic", "CouponsPublic",
           "EventIn", "EventBatch", "EventRefused", "EventsAccepted", "ConsentIn", "ConsentPublic",
           "ErasurePublic", "HealthPublic", "ModelPublic", "ReadyPublic", "ReloadPublic",
           "ErrorPublic"]
