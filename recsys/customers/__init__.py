"""Customer intelligence: RFM segments, lifecycle stages, tiers, churn risk and lifetime value.

``profile_customers`` builds the per-customer table the bundle carries; ``kpi_report`` the
loyalty KPIs; the models (``BGNBD``, ``GammaGamma``, ``ChurnModel``) are usable on their own.
Settings come from ``configs/customers.yaml`` via ``parse_customers_config``.
"""

from recsys.customers.bgnbd import BGNBD
from recsys.customers.churn import ChurnModel, churn_features
from recsys.customers.churn_eval import ChurnReport, calibration_table, evaluate_churn
from recsys.customers.clv import GammaGamma, customer_lifetime_value
from recsys.customers.config import CustomersConfig, parse_customers_config
from recsys.customers.history import FutureRowsWarning, History, build_history
from recsys.customers.kpis import KPIReport, cohort_retention, kpi_report
from recsys.customers.lifecycle import STAGES, assign_stages, assign_tiers
from recsys.customers.profile import (
    PROFILE_COLUMNS,
    empty_profile,
    group_summary,
    profile_customers,
)
from recsys.customers.rfm import assign_segments, quantile_scores, rfm

__all__ = [
    "BGNBD", "ChurnModel", "ChurnReport", "CustomersConfig", "FutureRowsWarning", "GammaGamma",
    "History", "KPIReport", "PROFILE_COLUMNS", "STAGES", "assign_segments", "assign_stages",
    "assign_tiers", "build_history", "calibration_table", "churn_features", "cohort_retention",
    "customer_lifetime_value", "empty_profile", "evaluate_churn", "group_summary", "kpi_report",
    "parse_customers_config", "profile_customers", "quantile_scores", "rfm",
]
