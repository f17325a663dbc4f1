"""Back-test plots (PNG): calibration curve and cumulative gain of the churn model, predicted vs actual revenue
by decile of the value model, from the last out-of-time date of a back-test. Logged to MLflow with each
trained version and written by `segments backtest`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.prediction import metrics as m
from ml.prediction.backtest import LAST_PERIOD, Backtest


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def calibration_png(result: Backtest, path: Path) -> Path:
    """Observed churn rate against the predicted probability, per tenth of the customers."""
    plt = _pyplot()
    c = result.curves
    predicted, observed = m.calibration_curve(c["churned"], c["risk"])
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label="churn model")
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title(f"Calibration, out of time ({c['as_of_date']})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def gain_png(result: Backtest, path: Path) -> Path:
    """Share of the churners found when customers are taken by descending risk: the model and both baselines."""
    plt = _pyplot()
    c = result.curves
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    for label, score in (
        ("churn model", c["risk"]),
        ("days since last order", c["recency"]),
        ("BG/NBD P(no order)", c["bg_nbd"]),
    ):
        shares, gains = m.gain_curve(np.nan_to_num(score, nan=np.nanmax(score)), c["churned"])
        ax.plot(shares, gains, label=f"{label} (AUC {m.auc(c['churned'], score):.3f})")
    ax.set_xlabel("share of customers contacted (highest risk first)")
    ax.set_ylabel("share of churners reached")
    ax.set_title(f"Cumulative gain, out of time ({c['as_of_date']})")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def value_deciles_png(result: Backtest, path: Path) -> Path:
    """Mean predicted and actual next-period revenue per decile of predicted revenue (chosen candidate), and the
    actual revenue per decile of the last-period baseline."""
    plt = _pyplot()
    c = result.curves
    actual = np.asarray(c["actual_revenue"], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, predicted, style in (
        (result.best_value_candidate, np.asarray(c["predicted_revenue"][result.best_value_candidate]), "o-"),
        ("last period's revenue", np.asarray(c["predicted_revenue"][LAST_PERIOD]), "s--"),
    ):
        deciles = np.array_split(np.argsort(-predicted, kind="stable"), 10)
        ax.plot(range(1, 11), [actual[d].mean() for d in deciles], style, label=f"actual, ranked by {label}")
        if label == result.best_value_candidate:
            ax.plot(range(1, 11), [predicted[d].mean() for d in deciles], "x:", label=f"predicted ({label})")
    ax.set_xlabel("decile of predicted revenue (1 = highest)")
    ax.set_ylabel("mean next-period revenue (base currency)")
    ax.set_title(f"Value model, out of time ({c['as_of_date']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def backtest_plots(result: Backtest, folder: Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        calibration_png(result, folder / "churn_calibration.png"),
        gain_png(result, folder / "churn_gain.png"),
        value_deciles_png(result, folder / "value_by_decile.png"),
    ]
