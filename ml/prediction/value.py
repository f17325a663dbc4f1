"""Future value: expected completed orders and revenue of each customer over the next `horizon_days`.

Two candidates, back-tested on the same snapshots (`ml/prediction/backtest.py`); the better becomes the value
model:

- `bg_nbd`: the buy-till-you-die model. BG/NBD (Fader, Hardie & Lee 2005) gives each customer's expected
  number of orders in the horizon and the probability they are still "alive"; Gamma-Gamma (Fader & Hardie
  2013) their expected spend per order, shrunk towards the population mean for customers with few orders.
  Unsupervised: it needs only each customer's order history up to the snapshot (orders, days since the first
  and the last, average order value), not outcomes (`ml/prediction/bgnbd.py`).
- `gradient_boosting`: two scikit-learn histogram gradient-boosting regressors with Poisson loss (means of
  non-negative targets), of future orders and future revenue on the definition's features, trained on past
  snapshots' outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline, make_pipeline

from ml.prediction import bgnbd
from ml.prediction.inputs import DAYS_PER_PERIOD, EmptyColumnsAsZero, feature_matrix, rfm_summary


@dataclass
class BgNbdValue:
    """BG/NBD purchases x Gamma-Gamma spend per order, fitted on one snapshot's order histories."""

    horizon_days: int
    purchase_params: dict[str, float] | None = None
    spend_params: dict[str, float] | None = None

    def fit(self, frame: pd.DataFrame) -> BgNbdValue:
        x, tx, T, m = rfm_summary(frame)
        self.purchase_params = bgnbd.fit_bgnbd(x, tx, T)
        self.spend_params = bgnbd.fit_gamma_gamma(x, m)
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        x, tx, T, m = rfm_summary(frame)
        t = self.horizon_days / DAYS_PER_PERIOD
        orders = bgnbd.expected_purchases(self.purchase_params, t, x, tx, T)
        spend = bgnbd.expected_spend(self.spend_params, x, m)
        return pd.DataFrame(
            {
                "expected_orders": orders,
                "expected_revenue_base": orders * spend,
                "p_alive": bgnbd.p_alive(self.purchase_params, x, tx, T),
                "p_no_order": bgnbd.probability_no_purchase(self.purchase_params, t, x, tx, T),
            },
            index=frame.index,
        )


@dataclass
class GradientBoostingValue:
    """Poisson-loss gradient boosting of future orders and future revenue on the definition's features."""

    features: tuple[str, ...]
    seed: int = 0
    orders_model: Pipeline | None = None
    revenue_model: Pipeline | None = None

    def _regressor(self) -> Pipeline:
        return make_pipeline(
            EmptyColumnsAsZero(),
            HistGradientBoostingRegressor(
                loss="poisson", max_iter=200, learning_rate=0.05, min_samples_leaf=40, random_state=self.seed
            ),
        )

    def fit(self, frame: pd.DataFrame, *, orders: bool = True) -> GradientBoostingValue:
        """Both regressors; `orders=False` fits only revenue (all a back-test compares)."""
        X = feature_matrix(frame, self.features)
        if orders:
            self.orders_model = self._regressor().fit(X, frame["future_orders"].to_numpy(dtype=float))
        self.revenue_model = self._regressor().fit(
            X, np.clip(frame["future_revenue_base"].to_numpy(dtype=float), 0, None)
        )
        return self

    def predict_revenue(self, frame: pd.DataFrame) -> np.ndarray:
        return self.revenue_model.predict(feature_matrix(frame, self.features))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        X = feature_matrix(frame, self.features)
        return pd.DataFrame(
            {"expected_orders": self.orders_model.predict(X), "expected_revenue_base": self.revenue_model.predict(X)},
            index=frame.index,
        )
