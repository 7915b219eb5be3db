"""Privacy: ``DELETE /v1/customers/{customer_id}`` and ``PUT .../consent``."""

from __future__ import annotations

from serving.deps import CustomerId, JournalDep, RequestIdDep
from serving.schemas import ConsentIn, ConsentPublic, ErasurePublic
from serving.security import scoped_router

router = scoped_router("privacy", tags=["customers"])


@router.delete("/customers/{customer_id}", response_model=ErasurePublic)
def erase(customer_id: CustomerId, runtime: JournalDep, request_id: RequestIdDep
          ) -> ErasurePublic:
    """Forget a customer: events, consent and cached state; excluded from the next training."""
    deleted = runtime.erase(customer_id)
    return ErasurePublic(customer_id=customer_id, records_deleted=deleted,
                         request_id=request_id)


@router.put("/customers/{customer_id}/consent", response_model=ConsentPublic)
def consent(customer_id: CustomerId, body: ConsentIn, runtime: JournalDep,
            request_id: RequestIdDep) -> ConsentPublic:
    """Opt in or out of personalization (opted out: popular picks, no targeted coupons)."""
    runtime.set_consent(customer_id, body.personalization)
    return ConsentPublic(customer_id=customer_id, personalization=body.personalization,
                         request_id=request_id)
