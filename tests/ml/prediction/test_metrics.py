"""Back-test measures: calibration error, top-decile capture with ties, AUC edge cases."""

import numpy as np
import pytest

from ml.prediction import metrics


def test_a_calibrated_predictor_has_a_small_calibration_error_and_a_shifted_one_does_not():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 50_000)
    y = rng.random(50_000) < p
    assert metrics.expected_calibration_error(y, p) < 0.01
    assert metrics.expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.1


def test_top_decile_capture_gives_no_credit_to_ties():
    actual = np.array([10.0] + [1.0] * 9 + [0.0] * 90)
    ranked = np.arange(100, 0, -1, dtype=float)  # the best customer first
    assert metrics.top_decile_capture(ranked, actual) == pytest.approx(1.0)
    flat = np.zeros(100)  # a predictor that cannot tell anyone apart: capture as a random order would
    assert metrics.top_decile_capture(flat, actual) == pytest.approx(0.1)


def test_auc_and_spearman_are_undefined_on_one_class_or_constant_input():
    assert np.isnan(metrics.auc(np.ones(5), np.arange(5)))
    assert np.isnan(metrics.spearman(np.ones(5), np.arange(5)))
    assert metrics.auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0


def test_gain_curve_runs_from_nothing_to_everything():
    shares, gains = metrics.gain_curve(np.array([0.9, 0.1, 0.5, 0.3]), np.array([1, 0, 1, 0]))
    assert gains[0] == 0 and gains[-1] == pytest.approx(1.0) and shares[-1] == 1
