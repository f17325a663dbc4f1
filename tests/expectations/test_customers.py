"""The marts.customers suite: a good frame passes, an error defect blocks, a warn defect does not."""

import pandas as pd
import pytest

from expectations.suites.customers import COLUMNS, build_customers_suite
from expectations.validate import validate


@pytest.fixture
def good() -> pd.DataFrame:
    n = 200
    return pd.DataFrame(
        {
            "customer_id": [f"cus_{i:016x}" for i in range(n)],
            "first_name": "Anna",
            "last_name": "Muller",
            "email": [f"a{i}@example.com" for i in range(n)],
            "phone": "+4930123",
            "street": "Hauptstr 5",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
            "birth_date": pd.Timestamp("1985-04-12"),
            "first_seen_at": pd.Timestamp("2023-01-01"),
            "source_record_count": 1,
            "crm_record_count": 1,
            "erp_account_count": 0,
            "support_record_count": 0,
            "source_record_ids": [[f"crm:C{i}"] for i in range(n)],
            "has_profiling_consent": True,
            "has_marketing_email_consent": False,
            "has_marketing_sms_consent": False,
        }
    )[COLUMNS]


def test_good_frame_passes(good):
    outcome = validate(good, build_customers_suite())
    assert outcome.success and not outcome.blocking
    assert outcome.failed_error == outcome.failed_warn == 0
    assert outcome.passed == len(outcome.results)


def test_duplicate_customer_id_blocks(good):
    good.loc[1, "customer_id"] = good.loc[0, "customer_id"]
    outcome = validate(good, build_customers_suite())
    assert outcome.blocking
    failed = [r for r in outcome.results if not r.success]
    assert [(r.expectation, r.column) for r in failed] == [("expect_column_values_to_be_unique", "customer_id")]
    assert failed[0].unexpected_count == 2


def test_warn_defect_does_not_block(good):
    good.loc[:20, "email"] = "not-an-email"
    outcome = validate(good, build_customers_suite())
    assert not outcome.blocking and outcome.failed_warn == 1
    assert outcome.results_as_dicts()[0]["severity"] in ("error", "warn")
