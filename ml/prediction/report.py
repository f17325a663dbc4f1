"""The back-test report: what was evaluated, how the churn and value models did beside the baselines, per
date and overall, against the definition's gates (Markdown; `Backtest.to_json` holds the same figures)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ml.prediction.backtest import LAST_PERIOD, Backtest
from ml.prediction.definition import PredictionDefinition


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def backtest_markdown(
    result: Backtest, definition: PredictionDefinition, training_set: pd.DataFrame, plots: list[Path]
) -> str:
    dates = sorted(str(d)[:10] for d in pd.to_datetime(training_set["as_of_date"]).unique())
    churn = result.churn
    churn_failures = definition.churn_gates.failures(churn)
    value_failures = definition.value_gates.failures(result.value_gate_metrics())
    per_date = "\n".join(
        f"| {r.as_of_date} | {r.train_rows:,} | {r.test_rows:,} | {r.churn_rate:.1%} | {_f(r.metrics['auc'])} | "
        f"{_f(r.metrics['recency_auc'])} | {_f(r.metrics['bg_nbd_auc'])} | {_f(r.metrics['brier'])} | "
        f"{_f(r.metrics['ece'])} |"
        for r in result.dates
    )
    value_rows = "\n".join(
        f"| {name}{' (chosen)' if name == result.best_value_candidate else ''}"
        f"{' (baseline)' if name == LAST_PERIOD else ''} | {_f(v['spearman'])} | {_f(v['top_decile'])} |"
        for name, v in result.value.items()
    )
    images = "\n".join(f"![{p.stem}]({p.name})" for p in plots)
    return f"""# Back-test: churn and value models ({definition.name} {definition.version})

Snapshots {", ".join(dates)} ({len(training_set):,} labelled rows: customers with at least
{definition.min_orders} completed order(s) and a lawful basis for profiling); outcome window {definition.horizon_days}
days. Each of the latest {len(result.dates)} dates is scored by models trained only on snapshots whose window had
closed by then.

## Churn risk (no completed order in the next {definition.horizon_days} days)

| as of | training rows | scored | churned | AUC | AUC recency | AUC BG/NBD | Brier | ECE |
|---|---|---|---|---|---|---|---|---|
{per_date}

Mean AUC {_f(churn["auc"])} (recency alone {_f(churn["recency_auc"])}, BG/NBD P(no order) {_f(churn["bg_nbd_auc"])},
BG/NBD 1 - P(alive) {_f(churn["p_alive_auc"])}); Brier {_f(churn["brier"])}; ECE {_f(churn["ece"])}; AUC spread across
dates {_f(churn["auc_spread"])}; rank stability (Spearman of the same customers' risk at consecutive dates)
{_f(churn["rank_stability"])}.
Gates: {"passed" if not churn_failures else "failed: " + "; ".join(churn_failures)}.

## Future value (revenue in the next {definition.horizon_days} days)

| predictor | Spearman with actual revenue | top-decile revenue capture |
|---|---|---|
{value_rows}

Gates ({result.best_value_candidate}): {"passed" if not value_failures else "failed: " + "; ".join(value_failures)}.

{images}
"""
