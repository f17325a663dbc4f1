"""A small published serving version for the report tests: the tables of a real `bi.duckdb` (DDL copied
from a publication after two deliveries) with a few hand-made rows whose aggregates the tests assert.

Six customers in three families (rfm, behavioural, predictive), two runs: in the second, one customer
moved Loyal -> Champions. The transition matrix, outbox and lift rows carry larger, distinctive counts
(they are aggregates in the real tables too), so a test can find them on the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import duckdb

DDL = {
    "reporting.customers": "customer_id VARCHAR, country VARCHAR, first_seen_at TIMESTAMP, "
    "source_system_count BIGINT, has_profiling_consent BOOLEAN",
    "reporting.customer_features": "customer_id VARCHAR, as_of_date DATE, recency_days BIGINT, frequency BIGINT, "
    "monetary_base DOUBLE, aov_base DOUBLE, has_profiling_consent BOOLEAN",
    "segments.customer_predictions": "customer_id VARCHAR, as_of_date DATE, horizon_days INTEGER, "
    "churn_probability DOUBLE, expected_orders DOUBLE, expected_revenue_base DOUBLE, not_predicted_reason VARCHAR, "
    "churn_model_version VARCHAR, value_model_version VARCHAR, definition_version VARCHAR, predicted_at TIMESTAMP, "
    "dagster_run_id VARCHAR",
    "segments.customer_segments": "customer_id VARCHAR, segment_family VARCHAR, segment_key VARCHAR, "
    "segment_name VARCHAR, r_score INTEGER, f_score INTEGER, m_score INTEGER, model_name VARCHAR, "
    "model_version VARCHAR, definition_version VARCHAR, assigned_at TIMESTAMP, reason VARCHAR, is_fallback BOOLEAN, "
    "fallback_reason VARCHAR, dagster_run_id VARCHAR",
    "segments.playbook_lift": "action_name VARCHAR, lift_window_days INTEGER, as_of_date DATE, "
    "first_action_date DATE, last_action_date DATE, open_windows BIGINT, next_window_end_date DATE, "
    "treated_customers BIGINT, holdout_customers BIGINT, treated_purchase_rate DOUBLE, holdout_purchase_rate DOUBLE, "
    "purchase_rate_lift DOUBLE, purchase_rate_lift_ci_low DOUBLE, purchase_rate_lift_ci_high DOUBLE, "
    "treated_revenue_per_customer_base DOUBLE, holdout_revenue_per_customer_base DOUBLE, "
    "revenue_per_customer_lift_base DOUBLE, revenue_per_customer_lift_ci_low_base DOUBLE, "
    "revenue_per_customer_lift_ci_high_base DOUBLE, treated_prior_buyers BIGINT, holdout_prior_buyers BIGINT, "
    "treated_retention_rate DOUBLE, holdout_retention_rate DOUBLE, retention_rate_lift DOUBLE, "
    "retention_rate_lift_ci_low DOUBLE, retention_rate_lift_ci_high DOUBLE, min_group_customers INTEGER, "
    "is_too_small BOOLEAN, lift_status VARCHAR",
    "segments.segment_actions": "action_id VARCHAR, action_name VARCHAR, playbook_version VARCHAR, "
    "customer_id VARCHAR, segment_family VARCHAR, segment_key VARCHAR, trigger_kind VARCHAR, from_segment_key VARCHAR, "
    'channel VARCHAR, purpose VARCHAR, lawful_basis VARCHAR, template_key VARCHAR, "owner" VARCHAR, '
    "is_holdout BOOLEAN, due_at TIMESTAMP, created_at TIMESTAMP, created_run_id VARCHAR",
    "segments.segment_alerts": "alert_id VARCHAR, alert_name VARCHAR, playbook_version VARCHAR, customer_id VARCHAR, "
    'segment_family VARCHAR, from_segment_key VARCHAR, to_segment_key VARCHAR, revenue_base DOUBLE, "owner" VARCHAR, '
    "due_date DATE, created_at TIMESTAMP, created_run_id VARCHAR",
    "segments.segment_definitions": "definition_name VARCHAR, definition_version VARCHAR, segment_family VARCHAR, "
    'description VARCHAR, content_sha256 VARCHAR, "content" JSON, first_used_at TIMESTAMP',
    "segments.segment_membership_history": "customer_id VARCHAR, segment_family VARCHAR, segment_key VARCHAR, "
    "segment_name VARCHAR, valid_from TIMESTAMP, valid_to TIMESTAMP, is_current BOOLEAN, model_name VARCHAR, "
    "model_version VARCHAR, definition_version VARCHAR, is_fallback BOOLEAN, fallback_reason VARCHAR, "
    "opened_run_id VARCHAR, closed_run_id VARCHAR",
    "segments.segment_profiles": "dagster_run_id VARCHAR, profiled_at TIMESTAMP, segment_family VARCHAR, "
    'segment_key VARCHAR, segment_name VARCHAR, customers BIGINT, "share" DOUBLE, avg_aov_base DOUBLE, '
    "avg_frequency DOUBLE, total_revenue_base DOUBLE, avg_revenue_base DOUBLE, avg_tenure_days DOUBLE, "
    "avg_recency_days DOUBLE, avg_csat DOUBLE, model_version VARCHAR, definition_version VARCHAR, "
    "predicted_customers BIGINT, churn_rate DOUBLE, avg_expected_revenue_base DOUBLE, "
    "total_expected_revenue_base DOUBLE, value_growth DOUBLE",
    "segments.segment_transition_customers": "dagster_run_id VARCHAR, moved_at TIMESTAMP, customer_id VARCHAR, "
    "segment_family VARCHAR, from_segment_key VARCHAR, from_segment_name VARCHAR, to_segment_key VARCHAR, "
    "to_segment_name VARCHAR, model_version VARCHAR, definition_version VARCHAR",
    "segments.segment_transitions": "dagster_run_id VARCHAR, scored_at TIMESTAMP, previous_run_id VARCHAR, "
    "segment_family VARCHAR, from_segment_key VARCHAR, from_segment_name VARCHAR, to_segment_key VARCHAR, "
    "to_segment_name VARCHAR, is_move BOOLEAN, customers BIGINT",
    'serving."publication"': '"version" VARCHAR, run_id VARCHAR, published_at TIMESTAMP',
    "serving.published_tables": 'table_schema VARCHAR, table_name VARCHAR, "source" VARCHAR, row_count BIGINT',
}

CUSTOMER_IDS = (
    "cus_5e1f0a9b7c3d",
    "cus_9a8b7c6d5e4f",
    "cus_0f1e2d3c4b5a",
    "cus_77aa88bb99cc",
    "cus_1234abcd5678",
    "cus_deadbeef0001",
)
RUN1 = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
RUN2 = "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
T1 = datetime(2026, 1, 1, 10, 0, 0)
T2 = datetime(2026, 1, 8, 10, 0, 0)
PUBLISHED_AT = datetime(2026, 1, 8, 10, 5, 0)
VERSION = "20260108T100500000000Z-22222222"

RFM_NAMES = {
    "rfm_champions": "Champions",
    "rfm_loyal": "Loyal",
    "rfm_at_risk": "At Risk",
    "rfm_not_profiled": "Not profiled",
}
# rfm now: c0, c1 champions (c1 came from loyal in run 2), c2, c3 loyal, c4 at risk, c5 not profiled
RFM_NOW = ("rfm_champions", "rfm_champions", "rfm_loyal", "rfm_loyal", "rfm_at_risk", "rfm_not_profiled")
BEHAVIOURAL = (
    ("behavioural_store_regulars", "Store regulars", "rule: last_activity_days <= 179.5 and share_store > 0.22; "
     "traits: high share store"),
    ("behavioural_discount_seekers", "Discount seekers", "rule: discounted_order_share > 0.59; "
     "traits: high discounted order share"),
    ("fallback_objected", "Not profiled (objected)", "fallback: refused or withdrew consent to profiling"),
)  # fmt: skip
BEHAVIOURAL_NOW = (0, 0, 0, 1, 1, 2)
# the clustering puts customer 3 in Discount seekers, but the surrogate tree's leaf for them is Store regulars'
SURROGATE_DISAGREES = 3
PREDICTIVE = (
    ("pred_top_predicted_value", "Top predicted value", "rule: predicted revenue percentile >= 0.8"),
    ("pred_likely_to_churn", "Likely to churn", "rule: churn probability >= 0.6"),
    ("fallback_objected", "Not profiled (objected)", "fallback: refused or withdrew consent to profiling"),
)
PREDICTIVE_NOW = (0, 0, 1, 1, 1, 2)

# (from, to, customers) of run 2's rfm matrix
RFM_TRANSITIONS = (
    ("rfm_champions", "rfm_champions", 40),
    ("rfm_loyal", "rfm_champions", 17),
    ("rfm_loyal", "rfm_loyal", 120),
    ("rfm_loyal", "rfm_at_risk", 5),
    ("rfm_at_risk", "rfm_at_risk", 30),
    ("rfm_not_profiled", "rfm_not_profiled", 9),
)
ACTIONS = (  # action, channel, purpose, rows, holdout rows
    ("winback_email", "email", "marketing_email", 7, 2),
    ("vip_sms", "sms", "marketing_sms", 3, 0),
)


def rfm_definition(champions_name: str) -> dict:
    return {
        "name": "rfm",
        "family": "rfm",
        "version": "1.2.0",
        "description": "Named RFM segments: the first rule whose score ranges match names the customer.",
        "rules": [
            {"key": "rfm_champions", "name": champions_name, "r": [5, 5], "f": [4, 5], "m": [1, 5],
             "description": "bought recently, buy often and spend the most"},
            {"key": "rfm_loyal", "name": "Loyal", "r": [3, 5], "f": [4, 5], "m": [1, 5],
             "description": "buy regularly and recently"},
            {"key": "rfm_at_risk", "name": "At Risk", "r": [1, 2], "f": [3, 5], "m": [1, 5],
             "description": "bought often in the past, not recently"},
        ],
        "not_profiled": {"key": "rfm_not_profiled", "name": "Not profiled"},
        "scoring": "r, f, m: quintiles 1..5",
    }  # fmt: skip


PREDICTION_DEFINITION = {
    "kind": "prediction",
    "name": "prediction",
    "version": "1.2.0",
    "horizon_days": 90,
    "segments": [
        {"name": "Top predicted value", "when": {"value_percentile": {"min": 0.8}}},
        {"name": "Likely to churn", "when": {"churn_probability": {"min": 0.6}}},
        {"name": "Low predicted value"},
    ],
}
BEHAVIOURAL_DEFINITION = {"name": "behavioural", "family": "behavioural", "version": "2.1.0", "features": []}


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: str, rows: Iterable[tuple]) -> None:
    """One INSERT for all rows (executemany runs a statement per row: ten times slower)."""
    rows = list(rows)
    if rows:
        marks = "(" + ", ".join("?" * len(rows[0])) + ")"
        con.execute(
            f"insert into {table} ({columns}) values {', '.join([marks] * len(rows))}", [v for r in rows for v in r]
        )


def _segments(champions_name: str) -> list[tuple]:
    rows = []
    for i, customer in enumerate(CUSTOMER_IDS):
        key = RFM_NOW[i]
        name = champions_name if key == "rfm_champions" else RFM_NAMES[key]
        reason = "fallback: objected to profiling: not scored" if key == "rfm_not_profiled" else "R=5 F=5 M=5: rfm"
        rows.append((customer, "rfm", key, name, "rfm_rules", "1.2.0", "1.2.0", T2, reason, key == "rfm_not_profiled"))
        for family, table, now, model in (
            ("behavioural", BEHAVIOURAL, BEHAVIOURAL_NOW, "customer_segmentation"),
            ("predictive", PREDICTIVE, PREDICTIVE_NOW, "churn_model+value_model"),
        ):
            key, name, reason = table[now[i]]
            if family == "behavioural" and i == SURROGATE_DISAGREES:
                reason = table[0][2]
            fallback = key.startswith("fallback_")
            rows.append((customer, family, key, name, model, "1", "2.1.0", T2, reason, fallback))
    return [(*r, RUN2) for r in rows]


def _history(champions_name: str) -> list[tuple]:
    rows = []
    for i, customer in enumerate(CUSTOMER_IDS):
        if i == 1:  # loyal in run 1, champions from run 2
            rows.append((customer, "rfm", "rfm_loyal", "Loyal", T1, T2, False))
            rows.append((customer, "rfm", "rfm_champions", champions_name, T2, None, True))
        else:
            key = RFM_NOW[i]
            rows.append(
                (customer, "rfm", key, champions_name if key == "rfm_champions" else RFM_NAMES[key], T1, None, True)
            )
        for family, table, now in (
            ("behavioural", BEHAVIOURAL, BEHAVIOURAL_NOW),
            ("predictive", PREDICTIVE, PREDICTIVE_NOW),
        ):
            key, name, _ = table[now[i]]
            rows.append((customer, family, key, name, T1, None, True))
    return rows  # fmt: skip


def _profiles(champions_name: str) -> list[tuple]:
    """Per run and segment: customers, share, AOV, frequency, avg revenue, churn rate."""
    rows = []
    for run, at, sizes in (
        (RUN1, T1, {"rfm_champions": 1, "rfm_loyal": 3, "rfm_at_risk": 1, "rfm_not_profiled": 1}),
        (RUN2, T2, {"rfm_champions": 2, "rfm_loyal": 2, "rfm_at_risk": 1, "rfm_not_profiled": 1}),
    ):
        for key, n in sizes.items():
            name = champions_name if key == "rfm_champions" else RFM_NAMES[key]
            churn = None if key == "rfm_not_profiled" else 0.4321
            rows.append((run, at, "rfm", key, name, n, n / 6, 1234.5, 3.25, 987.654, churn))
        for family, table, now in (
            ("behavioural", BEHAVIOURAL, BEHAVIOURAL_NOW),
            ("predictive", PREDICTIVE, PREDICTIVE_NOW),
        ):
            for j, (key, name, _) in enumerate(table):
                n = now.count(j)
                rows.append((run, at, family, key, name, n, n / 6, 50.0, 2.0, 100.0, None))
    return rows  # fmt: skip


def write_publication(
    serving_dir: Path,
    *,
    version: str = VERSION,
    champions_name: str = "Champions",
    drop: Iterable[str] = (),
    empty: Iterable[str] = (),
) -> Path:
    """Write `serving_dir/versions/<version>/` (bi.duckdb + manifest.json) and point `current` at it.
    `drop`: tables left out (an older project); `empty`: tables created without rows (a first delivery)."""
    drop, empty = set(drop), set(empty)
    version_dir = serving_dir / "versions" / version
    version_dir.mkdir(parents=True)
    with duckdb.connect(str(version_dir / "bi.duckdb")) as con:
        for schema in ("segments", "reporting", "serving"):
            con.execute(f"create schema {schema}")
        for table, columns in DDL.items():
            if table.replace('"', "") not in drop:
                con.execute(f"create table {table} ({columns})")
        data = _rows(champions_name, version)
        for table, (columns, rows) in data.items():
            if table.replace('"', "") not in drop | empty:
                _insert(con, table, columns, rows)
    (version_dir / "manifest.json").write_text(json.dumps({"version": version, "run_id": RUN2}))
    current = serving_dir / "current"
    if current.is_symlink():
        current.unlink()
    current.symlink_to(Path("versions") / version)
    return version_dir


def _rows(champions_name: str, version: str) -> dict[str, tuple[str, list[tuple]]]:
    names = {**RFM_NAMES, "rfm_champions": champions_name}
    predictions = [  # churn probability, expected revenue; the last customer objected to profiling
        (0.05, 300.0),
        (0.25, 120.0),
        (0.65, 20.0),
        (0.70, 10.0),
        (0.95, 2.0),
    ]
    actions = []
    for action, channel, purpose, n, holdout in ACTIONS:
        for k in range(n):
            actions.append((f"{action}-{k}", action, CUSTOMER_IDS[k % 6], "rfm", channel, purpose, "consent",
                            "segment", "crm-team", k < holdout, T2, RUN2))  # fmt: skip
    return {
        "reporting.customers": ("customer_id, country", [(c, "DE") for c in CUSTOMER_IDS]),
        "reporting.customer_features": ("customer_id, frequency", [(c, 3) for c in CUSTOMER_IDS]),
        "segments.customer_segments": (
            "customer_id, segment_family, segment_key, segment_name, model_name, model_version, definition_version, "
            "assigned_at, reason, is_fallback, dagster_run_id",
            _segments(champions_name),
        ),
        "segments.segment_membership_history": (
            "customer_id, segment_family, segment_key, segment_name, valid_from, valid_to, is_current",
            _history(champions_name),
        ),
        "segments.segment_profiles": (
            "dagster_run_id, profiled_at, segment_family, segment_key, segment_name, customers, share, avg_aov_base, "
            "avg_frequency, avg_revenue_base, churn_rate",
            _profiles(champions_name),
        ),
        "segments.segment_definitions": (
            "definition_name, definition_version, segment_family, description, content, first_used_at",
            [
                ("rfm", "1.2.0", "rfm", "Named RFM segments.", json.dumps(rfm_definition(champions_name)), T1),
                ("prediction", "1.2.0", "predictive", "Churn and value.", json.dumps(PREDICTION_DEFINITION), T1),
                ("behavioural", "2.1.0", "behavioural", "How customers buy.", json.dumps(BEHAVIOURAL_DEFINITION), T1),
            ],
        ),
        "segments.segment_transitions": (
            "dagster_run_id, scored_at, previous_run_id, segment_family, from_segment_key, from_segment_name, "
            "to_segment_key, to_segment_name, is_move, customers",
            [(RUN2, T2, RUN1, "rfm", f, names[f], t, names[t], f != t, n) for f, t, n in RFM_TRANSITIONS],
        ),
        "segments.segment_transition_customers": (
            "dagster_run_id, moved_at, customer_id, segment_family, from_segment_key, to_segment_key",
            [(RUN2, T2, CUSTOMER_IDS[1], "rfm", "rfm_loyal", "rfm_champions")],
        ),
        "segments.segment_alerts": (
            "alert_id, alert_name, customer_id, segment_family, from_segment_key, to_segment_key, revenue_base, "
            "owner, due_date, created_at, created_run_id",
            [
                (
                    "a1",
                    "valuable_customer_slipping",
                    CUSTOMER_IDS[2],
                    "rfm",
                    "rfm_loyal",
                    "rfm_at_risk",
                    1500.25,
                    "customer-success",
                    date(2026, 1, 15),
                    T2,
                    RUN2,
                ),
                (
                    "a2",
                    "valuable_customer_slipping",
                    CUSTOMER_IDS[3],
                    "rfm",
                    "rfm_loyal",
                    "rfm_at_risk",
                    499.75,
                    "customer-success",
                    date(2026, 1, 15),
                    T2,
                    RUN2,
                ),
            ],
        ),  # fmt: skip
        "segments.segment_actions": (
            "action_id, action_name, customer_id, segment_family, channel, purpose, lawful_basis, trigger_kind, "
            "owner, is_holdout, created_at, created_run_id",
            actions,
        ),
        "segments.playbook_lift": (
            "action_name, lift_window_days, open_windows, next_window_end_date, treated_customers, holdout_customers, "
            "purchase_rate_lift, purchase_rate_lift_ci_low, purchase_rate_lift_ci_high, min_group_customers, "
            "lift_status",
            [
                ("winback_email", 30, 4, date(2026, 2, 1), 310, 41, 0.123, 0.05, 0.196, 30, "measured"),
                ("vip_sms", 30, 2, date(2026, 2, 3), 40, 3, 0.5, -0.1, 1.1, 30, "too_few_holdout"),
            ],
        ),
        "segments.customer_predictions": (
            "customer_id, as_of_date, horizon_days, churn_probability, expected_revenue_base, not_predicted_reason, "
            "churn_model_version, value_model_version",
            [
                (c, date(2026, 1, 7), 90, p, v, None, "3", "4")
                for c, (p, v) in zip(CUSTOMER_IDS[:5], predictions, strict=True)
            ]
            + [(CUSTOMER_IDS[5], date(2026, 1, 7), 90, None, None, "profiling_objection", None, None)],
        ),
        'serving."publication"': ("version, run_id, published_at", [(version, RUN2, PUBLISHED_AT)]),
        "serving.published_tables": ("table_schema, table_name, row_count", [("segments", "customer_segments", 18)]),
    }
