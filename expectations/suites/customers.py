"""GX suite for marts.customers: the golden record every downstream step relies on."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

COLUMNS = [
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "city",
    "postal_code",
    "country",
    "birth_date",
    "first_seen_at",
    "source_record_count",
    "crm_record_count",
    "erp_account_count",
    "support_record_count",
    "source_record_ids",
    "has_profiling_consent",
    "has_marketing_email_consent",
    "has_marketing_sms_consent",
]
ERROR = {"severity": "error"}
WARN = {"severity": "warn"}


def build_customers_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="marts.customers",
        expectations=[
            gxe.ExpectTableColumnsToMatchSet(column_set=COLUMNS, exact_match=False, meta=ERROR),
            gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=ERROR),
            gxe.ExpectColumnValuesToNotBeNull(column="customer_id", meta=ERROR),
            gxe.ExpectColumnValuesToBeUnique(column="customer_id", meta=ERROR),
            gxe.ExpectColumnValuesToMatchRegex(column="customer_id", regex=r"^cus_[0-9a-f]{16}$", meta=ERROR),
            gxe.ExpectColumnValuesToBeBetween(column="source_record_count", min_value=1, meta=ERROR),
            gxe.ExpectColumnValuesToNotBeNull(column="first_seen_at", meta=ERROR),
            gxe.ExpectColumnValuesToMatchRegex(
                column="email", regex=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", mostly=0.98, meta=WARN
            ),
            gxe.ExpectColumnValuesToMatchRegex(column="country", regex=r"^[A-Z]{2}$", mostly=0.99, meta=WARN),
            gxe.ExpectColumnValuesToNotBeNull(column="last_name", mostly=0.95, meta=WARN),
            gxe.ExpectColumnValuesToNotBeNull(column="has_profiling_consent", meta=ERROR),
            gxe.ExpectColumnValuesToBeInSet(column="has_profiling_consent", value_set=[True, False], meta=ERROR),
        ],
    )
