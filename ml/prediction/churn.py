"""The churn risk model: P(no completed order in the next `horizon_days`) from a customer's features.

A scikit-learn classifier (histogram gradient boosting, which takes missing values as they are, or a
logistic regression on imputed, standardised features) fitted on 80 % of the training rows, then calibrated
on the other 20 % (isotonic or sigmoid, as the definition says) with the fitted model frozen: one fit,
probabilities that mean what they say (the Brier score and the calibration error are gated).

Its inputs are the definition's features plus two the BG/NBD model derives from the order history
(`BgNbdFeatures`: the probability of no order in the horizon and the expected orders in it, with parameters
fitted on the training rows): the buy-till-you-die view of a customer's rhythm, which single features such as
recency or order rate give only in part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.prediction import bgnbd
from ml.prediction.definition import PredictionDefinition
from ml.prediction.inputs import DAYS_PER_PERIOD, RFM_COLUMNS, EmptyColumnsAsZero, rfm_summary

CALIBRATION_SHARE = 0.2


def input_columns(definition: PredictionDefinition) -> tuple[str, ...]:
    """The columns the churn model reads: the definition's features and the order history BG/NBD needs."""
    return tuple(dict.fromkeys([*definition.features, *RFM_COLUMNS]))


class BgNbdFeatures(BaseEstimator, TransformerMixin):
    """Appends BG/NBD's P(no order in the horizon) and log(1 + expected orders) to the feature matrix; the
    BG/NBD parameters are fitted on the training rows in `fit` (no outcome is read: BG/NBD is unsupervised)."""

    def __init__(self, columns: tuple[str, ...] = (), horizon_days: int = 90):
        self.columns = columns
        self.horizon_days = horizon_days

    def _rfm(self, X):
        return rfm_summary(pd.DataFrame(np.asarray(X, dtype=float), columns=list(self.columns)))

    def fit(self, X, y=None):
        x, tx, T, _ = self._rfm(X)
        self.params_ = bgnbd.fit_bgnbd(x, tx, T)
        return self

    def transform(self, X):
        x, tx, T, _ = self._rfm(X)
        t = self.horizon_days / DAYS_PER_PERIOD
        extra = np.column_stack(
            [
                bgnbd.probability_no_purchase(self.params_, t, x, tx, T),
                np.log1p(bgnbd.expected_purchases(self.params_, t, x, tx, T)),
            ]
        )
        return np.hstack([np.asarray(X, dtype=float), extra])


def _classifier(definition: PredictionDefinition, seed: int):
    derived = BgNbdFeatures(input_columns(definition), definition.horizon_days)
    if definition.churn_algorithm == "gradient_boosting":
        return make_pipeline(
            derived,
            EmptyColumnsAsZero(),
            HistGradientBoostingClassifier(
                max_iter=100,
                learning_rate=0.05,
                max_depth=4,
                min_samples_leaf=200,
                l2_regularization=1.0,
                random_state=seed,
            ),
        )
    return make_pipeline(
        derived,
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, C=1.0),
    )


def fit_churn_model(X: np.ndarray, churned: np.ndarray, definition: PredictionDefinition, seed: int):
    """A calibrated classifier: fitted on a random 80 % of the rows, calibrated on the rest."""
    churned = np.asarray(churned, dtype=bool)
    if churned.all() or not churned.any():
        raise ValueError("every training row has the same outcome: nothing to learn")
    rng = np.random.default_rng(seed)
    calibrate = rng.random(len(churned)) < CALIBRATION_SHARE
    if churned[calibrate].all() or not churned[calibrate].any():
        calibrate[:] = False
        calibrate[rng.permutation(len(churned))[: max(2, int(len(churned) * CALIBRATION_SHARE))]] = True
    model = _classifier(definition, seed).fit(X[~calibrate], churned[~calibrate])
    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method=definition.calibration)
    return calibrated.fit(X[calibrate], churned[calibrate])


def churn_probability(model, X: np.ndarray) -> np.ndarray:
    """P(churned) per row."""
    classes = list(model.classes_)
    return model.predict_proba(X)[:, classes.index(True)]
