"""GX suites for the raw tables, derived from the landing contract (`warehouse.contracts`).

The ingest already enforces the contract row by row; these suites are the independent second line
that says, per table and run, that what landed in the raw layer is what the contract promises.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from warehouse.contracts import LINEAGE_COLUMNS, TableContract

ERROR = {"severity": "error"}


def build_raw_suite(contract: TableContract) -> gx.ExpectationSuite:
    """Schema, required values, primary key, accepted values and ranges of one raw table."""
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*contract.column_names, *(n for n, _ in LINEAGE_COLUMNS)], exact_match=True, meta=ERROR
        )
    ]
    for col in contract.columns:
        if col.required:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=col.name, meta=ERROR))
        if col.accepted:
            expectations.append(
                gxe.ExpectColumnValuesToBeInSet(column=col.name, value_set=list(col.accepted), meta=ERROR)
            )
        if col.minimum is not None or col.maximum is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col.name, min_value=col.minimum, max_value=col.maximum, meta=ERROR
                )
            )
    if len(contract.primary_key) == 1:
        expectations.append(gxe.ExpectColumnValuesToBeUnique(column=contract.primary_key[0], meta=ERROR))
    else:
        expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(contract.primary_key), meta=ERROR))
    for lineage in ("_source_file", "_source_row", "_file_sha256"):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=lineage, meta=ERROR))
    return gx.ExpectationSuite(name=contract.qualified_name, expectations=expectations)
