"""What the predictive models read: the feature matrix, the order-history summary BG/NBD needs, and the
handling of a column a user's data never fills."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

DAYS_PER_PERIOD = 7.0  # BG/NBD is fitted in weeks: parameters of a readable scale
# What BG/NBD and Gamma-Gamma read (registered features, allowed for profiling): orders, days since the last
# and the first, average order value.
RFM_COLUMNS = ("frequency", "recency_days", "days_since_first_order", "aov_base")


def feature_matrix(frame: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """The model's input: the columns `features` as floats, nulls kept as NaN."""
    return frame[list(features)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)


def rfm_summary(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(repeat orders x, time of the last order t_x, age T, average order value m) per customer, in weeks since
    the first order, from the point-in-time features: the BG/NBD and Gamma-Gamma inputs."""
    orders = pd.to_numeric(frame["frequency"], errors="coerce").fillna(0).to_numpy(dtype=float)
    age = pd.to_numeric(frame["days_since_first_order"], errors="coerce").fillna(0).to_numpy(dtype=float)
    recency = pd.to_numeric(frame["recency_days"], errors="coerce").to_numpy(dtype=float)
    recency = np.where(np.isfinite(recency), recency, age)
    aov = pd.to_numeric(frame["aov_base"], errors="coerce").fillna(0).to_numpy(dtype=float)
    x = np.clip(orders - 1, 0, None)
    T = np.clip(age, 0, None) / DAYS_PER_PERIOD
    tx = np.clip(age - recency, 0, None) / DAYS_PER_PERIOD
    return x, np.minimum(tx, T), T, np.clip(aov, 0, None)


class EmptyColumnsAsZero(BaseEstimator, TransformerMixin):
    """Columns without a single value in training (a source the user does not have: no tickets, no events)
    become 0, in training and scoring alike; gradient boosting cannot bin a column of nulls. Other nulls stay."""

    def fit(self, X, y=None):
        self.empty_ = np.isnan(np.asarray(X, dtype=float)).all(axis=0)
        return self

    def transform(self, X):
        X = np.array(X, dtype=float)
        X[:, self.empty_] = 0.0
        return X
