"""BG/NBD and Gamma-Gamma: the fit recovers the parameters a simulation planted, and the predictions match
what the simulated customers then did."""

import numpy as np
import pytest

from ml.prediction import bgnbd

PLANTED = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
SPEND = {"p": 6.0, "q": 4.0, "gamma": 15.0}


def simulate(n: int, T: float, ahead: float, seed: int = 0):
    """BG/NBD customers observed over (0, T] (weeks), and their purchases in (T, T + ahead]."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(PLANTED["r"], 1 / PLANTED["alpha"], n)
    drop = rng.beta(PLANTED["a"], PLANTED["b"], n)
    x, tx, later = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        t, alive = 0.0, True
        while alive:
            t += rng.exponential(1 / rate[i])
            if t > T + ahead:
                break
            if t <= T:
                x[i], tx[i] = x[i] + 1, t
            else:
                later[i] += 1
            alive = rng.random() >= drop[i]
    nu = rng.gamma(SPEND["q"], 1 / SPEND["gamma"], n)
    mean_spend = np.array([rng.gamma(SPEND["p"], 1 / nu[i], int(k)).mean() if k else 0.0 for i, k in enumerate(x)])
    return x, tx, np.full(n, T), later, mean_spend


@pytest.fixture(scope="module")
def customers():
    return simulate(20_000, T=52.0, ahead=13.0)


def test_fit_recovers_the_planted_parameters(customers):
    x, tx, T, _, m = customers
    fitted = bgnbd.fit_bgnbd(x, tx, T)
    for name, value in PLANTED.items():
        assert fitted[name] == pytest.approx(value, rel=0.15), name
    spend = bgnbd.fit_gamma_gamma(x, m)
    assert spend["p"] == pytest.approx(SPEND["p"], rel=0.2)
    # the population mean spend p * gamma / (q - 1) is what matters for predictions
    assert spend["p"] * spend["gamma"] / (spend["q"] - 1) == pytest.approx(
        SPEND["p"] * SPEND["gamma"] / (SPEND["q"] - 1), rel=0.05
    )


def test_predictions_match_the_simulated_future(customers):
    x, tx, T, later, _ = customers
    fitted = bgnbd.fit_bgnbd(x, tx, T)
    expected = bgnbd.expected_purchases(fitted, 13.0, x, tx, T)
    assert expected.sum() == pytest.approx(later.sum(), rel=0.05)
    silent = bgnbd.probability_no_purchase(fitted, 13.0, x, tx, T)
    assert silent.mean() == pytest.approx((later == 0).mean(), abs=0.02)
    # one-time buyers are "alive" for BG/NBD, yet many of them buy nothing: P(no order) tells them apart
    assert (bgnbd.p_alive(fitted, x, tx, T)[x == 0] == 1).all()
    assert silent[x == 0].mean() > 0.8


def test_degenerate_data_is_refused_with_a_reason():
    with pytest.raises(bgnbd.FitError, match="repeat purchases"):
        bgnbd.fit_bgnbd(np.zeros(50), np.zeros(50), np.full(50, 10.0))
    with pytest.raises(bgnbd.FitError, match="repeat buyers"):
        bgnbd.fit_gamma_gamma(np.ones(5), np.full(5, 20.0))
