"""Out-of-time quality measures of the churn and value models (and of the baselines they are compared with)."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import brier_score_loss, roc_auc_score


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of `score` ranking the positives (churned) first; NaN when only one class is present."""
    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.nan_to_num(np.asarray(score, dtype=float), nan=np.nanmax(score))))


def brier(y: np.ndarray, probability: np.ndarray) -> float:
    return float(brier_score_loss(np.asarray(y, dtype=bool), np.clip(probability, 0, 1)))


def expected_calibration_error(y: np.ndarray, probability: np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| churn rate over `bins` equal-frequency bins of the predicted
    probability, weighted by bin size (equal-frequency: a model that predicts a narrow range still gets
    `bins` populated bins)."""
    y, p = np.asarray(y, dtype=float), np.asarray(probability, dtype=float)
    order = np.argsort(p, kind="stable")
    return float(sum(len(b) * abs(p[b].mean() - y[b].mean()) for b in np.array_split(order, bins) if len(b)) / len(p))


def calibration_curve(y: np.ndarray, probability: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(mean predicted, observed rate) per equal-frequency bin, for the calibration plot."""
    y, p = np.asarray(y, dtype=float), np.asarray(probability, dtype=float)
    order = np.argsort(p, kind="stable")
    parts = [b for b in np.array_split(order, bins) if len(b)]
    return np.array([p[b].mean() for b in parts]), np.array([y[b].mean() for b in parts])


def spearman(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Spearman rank correlation (ties averaged); NaN when either side is constant."""
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    if np.ptp(predicted) == 0 or np.ptp(actual) == 0:
        return float("nan")
    return float(spearmanr(predicted, actual).statistic)


def top_decile_capture(predicted: np.ndarray, actual: np.ndarray, share: float = 0.1) -> float:
    """Share of the actual total captured by the `share` of customers ranked highest by `predicted`. Ties
    at the cut are split pro rata (the expected capture of a random order among them), so a predictor that
    cannot tell customers apart earns no credit from the row order."""
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    total = actual.sum()
    if total <= 0 or len(actual) == 0:
        return float("nan")
    n = max(1, int(round(share * len(actual))))
    cut = np.sort(predicted)[::-1][n - 1]
    above = predicted > cut
    at_cut = predicted == cut
    room = n - above.sum()
    captured = actual[above].sum() + (actual[at_cut].sum() * room / at_cut.sum() if at_cut.any() else 0.0)
    return float(captured / total)


def gain_curve(score: np.ndarray, actual: np.ndarray, points: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(share of customers, share of the actual total) when customers are taken in descending `score`:
    the cumulative gain chart (for churn, `actual` = churned; for value, future revenue)."""
    score, actual = np.asarray(score, dtype=float), np.asarray(actual, dtype=float)
    order = np.argsort(-score, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(actual[order])]) / max(actual.sum(), 1e-12)
    shares = np.linspace(0, 1, points + 1)
    return shares, cumulative[np.round(shares * len(actual)).astype(int)]
