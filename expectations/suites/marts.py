"""GX suites for the marts and the BI-facing segment tables.

Error severity guards what downstream steps rely on (keys, references, money that cannot be
negative); warn severity watches distributions that drift in real data without being wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import great_expectations as gx
import great_expectations.expectations as gxe

from warehouse.contracts import ORDER_STATUSES

ERROR = {"severity": "error"}
WARN = {"severity": "warn"}
PII_COLUMNS = ("first_name", "last_name", "email", "phone", "street", "birth_date", "postal_code")


def build_orders_suite(freshness_days: int = 45) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="marts.orders",
        expectations=[
            gxe.ExpectColumnValuesToBeUnique(column="order_id", meta=ERROR),
            gxe.ExpectColumnValuesToNotBeNull(column="customer_id", meta=ERROR),
            gxe.ExpectColumnValuesToNotBeNull(column="fx_rate_to_base", meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="fx_rate_to_base", min_value=0, strict_min=True, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="net_revenue_base", min_value=0, meta=ERROR),
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(ORDER_STATUSES), meta=ERROR),
            # distribution bounds: most orders complete; a typical basket is worth 1..1,000 in the base currency
            gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(column="customer_id", min_value=0.01, meta=WARN),
            gxe.ExpectColumnMeanToBeBetween(column="net_revenue_base", min_value=1, max_value=1000, meta=WARN),
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["completed"], mostly=0.7, meta=WARN),
            # freshness: the newest order is at most 45 days old (a stalled ERP export shows here first)
            gxe.ExpectColumnMaxToBeBetween(
                column="ordered_at",
                min_value=datetime.now(UTC).replace(tzinfo=None) - timedelta(days=freshness_days),
                meta=WARN,
            ),
        ],
    )


def build_order_lines_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="marts.order_lines",
        expectations=[
            gxe.ExpectColumnValuesToBeUnique(column="order_line_id", meta=ERROR),
            gxe.ExpectColumnValuesToNotBeNull(column="order_id", meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="unit_price", min_value=0, meta=ERROR),
            gxe.ExpectColumnValuesToNotBeNull(column="net_amount_base", meta=ERROR),
            # a discount larger than the line is possible (vouchers) but rare
            gxe.ExpectColumnValuesToBeBetween(column="net_amount", min_value=0, mostly=0.99, meta=WARN),
        ],
    )


def build_customer_source_records_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="marts.customer_source_records",
        expectations=[
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["source_system", "source_record_id"], meta=ERROR),
            gxe.ExpectColumnValuesToNotBeNull(column="customer_id", meta=ERROR),
            gxe.ExpectColumnValuesToMatchRegex(column="customer_id", regex=r"^cus_[0-9a-f]{16}$", meta=ERROR),
            gxe.ExpectColumnValuesToBeInSet(
                column="source_system", value_set=["crm", "erp", "support", "events"], meta=ERROR
            ),
        ],
    )


def build_support_tickets_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="marts.support_tickets",
        expectations=[
            gxe.ExpectColumnValuesToBeUnique(column="ticket_id", meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="csat_score", min_value=1, max_value=5, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="resolution_hours", min_value=0, meta=ERROR),
            gxe.ExpectColumnValuesToNotBeNull(column="customer_id", mostly=0.8, meta=WARN),
        ],
    )


def build_customer_features_suite() -> gx.ExpectationSuite:
    shares = (
        "share_web",
        "share_app",
        "share_store",
        "share_phone",
        "discount_share",
        "discounted_order_share",
        "return_rate",
        "event_app_share",
        "event_mobile_share",
    )
    return gx.ExpectationSuite(
        name="marts.customer_features",
        expectations=[
            gxe.ExpectColumnValuesToBeUnique(column="customer_id", meta=ERROR),
            gxe.ExpectColumnValuesToNotBeNull(column="as_of_date", meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="frequency", min_value=0, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="monetary_base", min_value=0, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="recency_days", min_value=0, meta=ERROR),
            *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1, meta=ERROR) for c in shares),
            gxe.ExpectColumnValuesToBeBetween(column="avg_csat", min_value=1, max_value=5, meta=ERROR),
            *(
                gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, meta=ERROR)
                for c in (
                    "order_rate_per_year",
                    "days_since_first_order",
                    "last_activity_days",
                    "tickets_per_year",
                    "items_per_order",
                )
            ),
            # point in time: the last sign of life is never older than the last order
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="recency_days",
                column_B="last_activity_days",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta=ERROR,
            ),
            # distribution: a customer base where almost nobody bought is a broken join, not a business
            gxe.ExpectColumnValuesToBeBetween(column="frequency", min_value=1, mostly=0.3, meta=WARN),
        ],
    )


def _in_family(family: str) -> dict:
    """Restrict an expectation to the rows of one segment family (GX row condition on the DataFrame)."""
    return {"row_condition": f'segment_family=="{family}"', "condition_parser": "pandas"}


def build_customer_segments_suite() -> gx.ExpectationSuite:
    """segments.customer_segments: one row per customer per family, one model version per family, rfm keys
    from the rule table, no PII. The 3..7 segments per family principle is watched for the behavioural
    family only (the RFM rule table names more by design)."""
    from ml.segmentation.rfm import rfm_segment_keys
    from ml.segmentation.store import SEGMENT_FAMILIES

    rfm_keys = list(rfm_segment_keys())
    return gx.ExpectationSuite(
        name="segments.customer_segments",
        expectations=[
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["customer_id", "segment_family"], meta=ERROR),
            *(
                gxe.ExpectColumnValuesToNotBeNull(column=c, meta=ERROR)
                for c in (
                    "customer_id",
                    "segment_family",
                    "segment_key",
                    "segment_name",
                    "model_name",
                    "model_version",
                    "definition_version",
                    "is_fallback",
                )
            ),
            gxe.ExpectColumnValuesToBeInSet(column="segment_family", value_set=list(SEGMENT_FAMILIES), meta=ERROR),
            *(
                gxe.ExpectColumnUniqueValueCountToBeBetween(
                    column="model_version", min_value=1, max_value=1, meta=ERROR, **_in_family(f)
                )
                for f in SEGMENT_FAMILIES
            ),
            gxe.ExpectColumnValuesToBeInSet(column="segment_key", value_set=rfm_keys, meta=ERROR, **_in_family("rfm")),
            *(
                gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=5, meta=ERROR)
                for c in ("r_score", "f_score", "m_score")
            ),
            # BI-facing: no PII column may appear
            gxe.ExpectTableColumnsToMatchSet(
                column_set=[
                    "customer_id",
                    "segment_family",
                    "segment_key",
                    "segment_name",
                    "r_score",
                    "f_score",
                    "m_score",
                    "model_name",
                    "model_version",
                    "definition_version",
                    "assigned_at",
                    "reason",
                    "is_fallback",
                    "fallback_reason",
                    "dagster_run_id",
                ],
                exact_match=True,
                meta=ERROR,
            ),
            # 3..7 segments the model placed customers in; fallback segments (no consent, ...) do not count
            gxe.ExpectColumnUniqueValueCountToBeBetween(
                column="segment_key",
                min_value=3,
                max_value=7,
                meta=WARN,
                row_condition='segment_family=="behavioural" & is_fallback==False',
                condition_parser="pandas",
            ),
        ],
    )


def build_segment_profiles_suite() -> gx.ExpectationSuite:
    """segments.segment_profiles: one row per run, family and segment; shares and churn rates are proportions,
    predicted customers at most the segment; no PII."""
    return gx.ExpectationSuite(
        name="segments.segment_profiles",
        expectations=[
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["dagster_run_id", "segment_family", "segment_key"], meta=ERROR
            ),
            *(
                gxe.ExpectColumnValuesToNotBeNull(column=c, meta=ERROR)
                for c in ("dagster_run_id", "segment_family", "segment_key", "segment_name", "customers", "share")
            ),
            gxe.ExpectColumnValuesToBeBetween(column="share", min_value=0, max_value=1, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="customers", min_value=1, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="total_revenue_base", min_value=0, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="churn_rate", min_value=0, max_value=1, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="total_expected_revenue_base", min_value=0, meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="value_growth", min_value=-1, meta=ERROR),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="customers",
                column_B="predicted_customers",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta=ERROR,
            ),
            gxe.ExpectTableColumnsToMatchSet(
                column_set=[
                    "dagster_run_id",
                    "profiled_at",
                    "segment_family",
                    "segment_key",
                    "segment_name",
                    "customers",
                    "share",
                    "avg_aov_base",
                    "avg_frequency",
                    "total_revenue_base",
                    "avg_revenue_base",
                    "avg_tenure_days",
                    "avg_recency_days",
                    "avg_csat",
                    "model_version",
                    "definition_version",
                    "predicted_customers",
                    "churn_rate",
                    "avg_expected_revenue_base",
                    "total_expected_revenue_base",
                    "value_growth",
                ],
                exact_match=True,
                meta=ERROR,
            ),
        ],
    )


MART_SUITES = {
    ("marts", "orders"): build_orders_suite,
    ("marts", "order_lines"): build_order_lines_suite,
    ("marts", "customer_source_records"): build_customer_source_records_suite,
    ("marts", "support_tickets"): build_support_tickets_suite,
    ("marts", "customer_features"): build_customer_features_suite,
    ("segments", "customer_segments"): build_customer_segments_suite,
    ("segments", "segment_profiles"): build_segment_profiles_suite,
}
