"""The landing contract as code: one `TableContract` per landing table.

`docs/landing-contract.md` documents the same tables for people; this module is what the
loader enforces. Each contract says which columns exist, their types, which are required, which values
are accepted, the primary key and the references to other raw tables. The loader turns these rules into
one SQL statement per file (see `warehouse.ingest`), so adding a rule here adds a quarantine reason
without touching the loader.

Quarantine reason kinds (`reason_kind`) are a contract with the quality checks and the demo
generator's ground truth: parse_error, type_error, missing_required, invalid_value, negative_quantity,
negative_amount, unknown_currency, future_date, orphan_reference, duplicate_key.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

# DuckDB types of the raw layer, keyed by the contract's type names.
DECIMAL_SCALE = 2  # digits after the point a decimal keeps (money); a value with more is rejected, not rounded
SQL_TYPES = {
    "text": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "integer": "BIGINT",
    "decimal": f"DECIMAL(18,{DECIMAL_SCALE})",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
}

# Lineage columns appended to every raw table.
LINEAGE_COLUMNS = (
    ("_source_file", "VARCHAR"),
    ("_source_row", "BIGINT"),
    ("_file_sha256", "VARCHAR"),
    ("_loaded_at", "TIMESTAMP"),
)


@dataclass(frozen=True)
class Column:
    """One landing column and the rules a value must satisfy."""

    name: str
    type: str = "text"
    required: bool = False
    accepted: tuple[str, ...] | None = None
    minimum: float | None = None
    # Reason kind when the value is below `minimum` (e.g. negative_quantity).
    minimum_kind: str = "invalid_value"
    maximum: float | None = None
    not_future: bool = False
    # a timestamp without offset or zone is local time here (converted to UTC); `contracts_for` sets it
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        if self.type not in SQL_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True)
class Reference:
    """A column whose non-null values must exist in another raw table's column."""

    column: str
    target_table: str  # "schema.table"
    target_column: str
    kind: str = "orphan_reference"
    # values valid without a row in the target table (`contracts_for`: the base currency needs no exchange rate)
    always_known: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableContract:
    """A landing table: `landing/<source>/<table>/` loads into raw table `<source>.<table>`."""

    source: str
    table: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    references: tuple[Reference, ...] = ()
    file_format: str = "csv"  # csv (or parquet) per file extension; "jsonl" for events
    # Extra row rules: (SQL predicate with {column} placeholders, true or NULL for a valid row; kind; message).
    row_rules: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)

    @property
    def qualified_name(self) -> str:
        return f"{self.source}.{self.table}"

    @property
    def landing_path(self) -> str:
        return f"{self.source}/{self.table}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


def _req(name: str, type_: str = "text", **kw) -> Column:
    return Column(name, type_, required=True, **kw)


# The currency every amount is converted to (`*_base` columns downstream) unless the project names another
# (`base_currency:` in segments.yaml). An amount in the base currency needs no row in erp/fx_rates, so a
# business that sells in one currency delivers no FX rates at all.
DEFAULT_BASE_CURRENCY = "EUR"
CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
FX_RATES_TABLE = "erp.fx_rates"
CURRENCY_REFERENCE = (FX_RATES_TABLE, "currency", "unknown_currency")
ORDER_STATUSES = ("completed", "cancelled", "returned", "open")

_CONTRACTS: tuple[TableContract, ...] = (
    # Order matters: a table is loaded after the tables it references.
    TableContract(
        "erp",
        "fx_rates",
        (
            _req("rate_date", "date"),
            _req("currency"),
            # 1 unit of `currency` = rate_to_base units of the base currency
            _req("rate_to_base", "double", minimum=1e-12),
        ),
        primary_key=("rate_date", "currency"),
    ),
    TableContract(
        "crm",
        "customers",
        (
            _req("crm_customer_id"),
            Column("first_name"),
            Column("last_name"),
            Column("email"),
            Column("phone"),
            Column("street"),
            Column("city"),
            Column("postal_code"),
            Column("region"),  # state, province or county
            Column("country"),
            Column("birth_date", "date", not_future=True),
            _req("created_at", "timestamp", not_future=True),
            Column("updated_at", "timestamp"),
            # further evidence of who a person is, compared by identity resolution when a delivery fills them
            Column("gender"),
            Column("birth_place"),
            Column("occupation"),
            Column("company"),
        ),
        primary_key=("crm_customer_id",),
    ),
    TableContract(
        "crm",
        "consents",
        (
            _req("consent_id"),
            _req("crm_customer_id"),
            _req("purpose", accepted=("marketing_email", "marketing_sms", "profiling")),
            _req("is_granted", "boolean"),
            _req("recorded_at", "timestamp", not_future=True),
        ),
        primary_key=("consent_id",),
        references=(Reference("crm_customer_id", "crm.customers", "crm_customer_id"),),
    ),
    TableContract(
        "erp",
        "accounts",
        (
            _req("erp_account_id"),
            Column("crm_customer_id"),
            Column("first_name"),
            Column("last_name"),
            Column("email"),
            Column("phone"),
            Column("street"),
            Column("city"),
            Column("postal_code"),
            Column("region"),
            Column("country"),
            _req("created_at", "timestamp", not_future=True),
        ),
        primary_key=("erp_account_id",),
    ),
    TableContract(
        "erp",
        "orders",
        (
            _req("order_id"),
            _req("erp_account_id"),
            _req("ordered_at", "timestamp", not_future=True),
            _req("channel", accepted=("web", "app", "store", "phone")),
            _req("currency"),
            # open: placed, not yet completed (features count completed orders only)
            _req("status", accepted=ORDER_STATUSES),
            Column("source_status"),  # the export's own status, kept as delivered (a mapping maps it to status)
            Column("shipping_amount", "decimal", minimum=0, minimum_kind="negative_amount"),  # freight charged
            Column("tax_amount", "decimal", minimum=0, minimum_kind="negative_amount"),
        ),
        primary_key=("order_id",),
        references=(
            Reference("erp_account_id", "erp.accounts", "erp_account_id"),
            Reference("currency", *CURRENCY_REFERENCE),
        ),
    ),
    TableContract(
        "erp",
        "order_lines",
        (
            _req("order_line_id"),
            _req("order_id"),
            _req("product_id"),
            _req("category"),
            _req("quantity", "integer", minimum=1, minimum_kind="negative_quantity"),
            _req("unit_price", "decimal", minimum=0, minimum_kind="negative_amount"),
            Column("discount_amount", "decimal", minimum=0, minimum_kind="negative_amount"),
        ),
        primary_key=("order_line_id",),
        references=(Reference("order_id", "erp.orders", "order_id"),),
    ),
    TableContract(
        "erp",
        "payments",
        (
            _req("payment_id"),
            _req("order_id"),
            Column("paid_at", "timestamp", not_future=True),  # empty: not known (an export without payment times)
            _req("amount", "decimal", minimum=0, minimum_kind="negative_amount"),
            _req("currency"),
            _req("method", accepted=("card", "paypal", "bank_transfer", "gift_card")),
            Column("instalments", "integer", minimum=1),
        ),
        primary_key=("payment_id",),
        references=(
            Reference("order_id", "erp.orders", "order_id"),
            Reference("currency", *CURRENCY_REFERENCE),
        ),
    ),
    TableContract(
        "support",
        "tickets",
        (
            _req("ticket_id"),
            Column("requester_email"),
            Column("requester_name"),
            Column("requester_phone"),
            Column("erp_account_id"),
            _req("created_at", "timestamp", not_future=True),
            Column("resolved_at", "timestamp", not_future=True),
            _req("channel", accepted=("email", "phone", "chat", "web")),
            _req("category"),
            Column("priority", accepted=("low", "normal", "high", "urgent")),
            Column("csat_score", "integer", minimum=1, maximum=5),
        ),
        primary_key=("ticket_id",),
        row_rules=(("{resolved_at} >= {created_at}", "invalid_value", "resolved_at before created_at"),),
    ),
    TableContract(
        "feedback",
        "reviews",
        (
            _req("review_id"),
            _req("order_id"),
            _req("score", "integer", minimum=1, maximum=5),
            _req("created_at", "timestamp", not_future=True),
            Column("answered_at", "timestamp", not_future=True),
        ),
        # a review id may cover several orders of one checkout (e.g. the Olist export's)
        primary_key=("review_id", "order_id"),
        references=(Reference("order_id", "erp.orders", "order_id"),),
    ),
    TableContract(
        "events",
        "events",
        (
            _req("event_id"),
            _req("occurred_at", "timestamp", not_future=True),
            _req("anonymous_id"),
            Column("crm_customer_id"),
            Column("email"),
            _req(
                "event_type",
                accepted=("page_view", "product_view", "add_to_cart", "checkout", "login"),
            ),
            Column("device", accepted=("desktop", "mobile", "tablet")),
            Column("channel", accepted=("web", "app")),
        ),
        primary_key=("event_id",),
        file_format="jsonl",
    ),
)


def contracts_for(base_currency: str = DEFAULT_BASE_CURRENCY, time_zone: str = "UTC") -> tuple[TableContract, ...]:
    """The landing contract of a project: `base_currency` (an ISO 4217 code) is known to every currency
    reference without an exchange rate; timestamps delivered without an offset are local time in
    `time_zone` (a name DuckDB knows, validated by the project). Raises ValueError for a malformed code."""
    if not CURRENCY_CODE.match(base_currency):
        raise ValueError(f"base currency must be a three-letter ISO 4217 code such as EUR, got {base_currency!r}")
    return tuple(
        dataclasses.replace(
            contract,
            columns=tuple(
                dataclasses.replace(col, time_zone=time_zone) if col.type == "timestamp" else col
                for col in contract.columns
            ),
            references=tuple(
                dataclasses.replace(ref, always_known=(base_currency,)) if ref.target_table == FX_RATES_TABLE else ref
                for ref in contract.references
            ),
        )
        for contract in _CONTRACTS
    )


CONTRACTS = contracts_for()
CONTRACTS_BY_NAME = {c.qualified_name: c for c in CONTRACTS}
