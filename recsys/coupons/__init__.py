"""Personalized coupons: catalog, eligibility, redemption propensity, budget-aware assignment.

Eligibility first (hard rules), then value: ``score = P(redeem) x incremental margin - cost``,
assigned greedily under per-customer caps and per-coupon and global budgets, each coupon with
the rule that admitted it and the reason it was chosen (DOMAIN.md, issue 6).
"""

from __future__ import annotations

from recsys.coupons.assign import Assignment, BudgetState, CouponAssigner, assign_optimal
from recsys.coupons.catalog import KINDS, Catalog, Coupon, load_catalog, parse_catalog
from recsys.coupons.eligibility import Audience, EligibilityRules, admitting_rule, eligibility
from recsys.coupons.offer_features import FEATURES, PurchaseLog, customer_history, offer_features
from recsys.coupons.propensity import (
    OfferTable,
    RedemptionModel,
    build_offer_table,
    prior_propensity,
    top_fraction_lift,
)
from recsys.coupons.scoring import Economics, coupon_products, economics, target_share

__all__ = ["Assignment", "BudgetState", "CouponAssigner", "assign_optimal", "KINDS", "Catalog",
           "Coupon", "load_catalog", "parse_catalog", "Audience", "EligibilityRules",
           "admitting_rule", "eligibility", "FEATURES", "PurchaseLog", "customer_history",
           "offer_features", "OfferTable", "RedemptionModel", "build_offer_table",
           "prior_propensity", "top_fraction_lift", "Economics", "coupon_products", "economics",
           "target_share"]
