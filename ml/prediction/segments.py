"""The predictive segment family: every customer placed by their churn risk and predicted value.

The rules are the prediction definition's `segments` (`ml/prediction/definition.py`): an ordered list whose
first match names a predicted customer, the last taking the rest, so the segments are mutually exclusive
and cover everyone predicted. The measures come from `ml.customer_predictions` (written by the prediction
scoring step of the same run) and the scoring run's own RFM assignments:

- `churn_probability`: the churn champion's probability of no completed order in the horizon;
- `value_percentile` / `spend_percentile`: rank of predicted revenue / past spend among predicted customers;
- `value_growth`: predicted revenue in the horizon over the customer's past revenue per horizon
  (`monetary_base * horizon / max(days since first order, horizon)`), minus 1;
- `rfm_segment`: the RFM segment key the run gives the customer;
- `rfm_segment_if_no_order`: the RFM segment key the customer would have after `horizon_days` more days
  without an order, scored against today's R boundaries with today's F and M (what "heading to At Risk"
  means).

A customer without a current prediction gets a fallback segment with its reason, as in the other families:
the reason the prediction step gave (no lawful basis for profiling, too little history, no approved model
yet), or `no_current_prediction` when the predictions are missing or were made under another definition
version. Every row carries the two models' versions (`<churn>+<value>`) and the definition version.

`PredictiveFamily` is handed to segmentation's `score_customers` (`extra_families`), which stages its rows
with the behavioural and rfm families and writes them in the same transaction: history, transitions,
profiles and playbooks work on the family like on the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml.prediction.definition import FAMILY, PredictionDefinition, PredictiveSegment
from ml.segmentation.fallback import FALLBACKS, NO_CURRENT_PREDICTION
from ml.segmentation.rfm import name_segments, recency_scores_against, segment_key
from ml.segmentation.store import PREDICTIONS_TABLE, family_rows
from warehouse.tables import ensure_tables

# The feature columns the family reads besides the ones every scoring run reads (eligibility, RFM inputs).
COLUMNS = ("days_since_first_order",)


def combined_version(churn_version: str | None, value_version: str | None) -> str:
    """The model version of a predictive row: `<churn>+<value>`, or "none" while either model has no champion."""
    if not churn_version or not value_version or pd.isna(churn_version) or pd.isna(value_version):
        return "none"
    return f"{churn_version}+{value_version}"


@dataclass(frozen=True)
class PredictiveFamily:
    """The predictive family of one scoring run: its definition and the predictions it places customers by."""

    definition: PredictionDefinition
    predictions: pd.DataFrame  # ml.customer_predictions
    columns: tuple[str, ...] = COLUMNS

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, definition: PredictionDefinition) -> PredictiveFamily:
        ensure_tables(con, PREDICTIONS_TABLE)
        predictions = con.execute(
            f"""select customer_id, churn_probability, expected_revenue_base, not_predicted_reason,
                       churn_model_version, value_model_version, definition_version
                from {PREDICTIONS_TABLE}"""
        ).df()
        return cls(definition, predictions)

    @property
    def family(self) -> str:
        return FAMILY

    @property
    def model_name(self) -> str:
        return f"{self.definition.churn_model_name}+{self.definition.value_model_name}"

    @property
    def model_version(self) -> str:
        current = self.predictions[self.predictions["definition_version"] == self.definition.version]
        if current.empty:
            return "none"
        return combined_version(current["churn_model_version"].iloc[0], current["value_model_version"].iloc[0])

    def assign(self, features: pd.DataFrame, rfm: pd.DataFrame) -> pd.DataFrame:
        """The family's rows (`family_rows`, RFM scores joined) for every customer of `features`
        (customer_id, recency_days, monetary_base and `COLUMNS`), given the run's rfm rows (`rfm_assignments`)."""
        frame = (
            features[["customer_id", "recency_days", "monetary_base", *self.columns]]
            .merge(self.predictions, on="customer_id", how="left")
            .merge(
                rfm[["customer_id", "segment_key", "r_score", "f_score", "m_score"]].rename(
                    columns={"segment_key": "rfm_segment"}
                ),
                on="customer_id",
                how="left",
            )
        )
        reasons = frame["not_predicted_reason"].astype(object).where(frame["not_predicted_reason"].notna(), None)
        stale = (frame["definition_version"] != self.definition.version).to_numpy()
        reasons[stale & reasons.isna().to_numpy()] = NO_CURRENT_PREDICTION
        reasons[reasons.isna() & frame["churn_probability"].isna()] = NO_CURRENT_PREDICTION
        predicted = reasons.isna().to_numpy()
        segments = self.definition.segments
        position = np.full(len(frame), -1)
        # the R boundaries of the run: the recency of the customers it scored (rfm rows with a score > 0)
        scored_recency = frame.loc[frame["r_score"].fillna(0).astype(int).to_numpy() > 0, "recency_days"]
        measured = measures(frame[predicted], scored_recency.to_numpy(dtype="float64"), self.definition)
        position[predicted] = first_matching(segments, measured)
        # one label per segment, then per fallback reason: each row points at its label (no string per row)
        reason_codes = sorted(set(reasons[~predicted]))
        labels = [(s.key, s.name, f"rule: {s.rule()}", False, None) for s in segments] + [
            (*FALLBACKS[r][:2], f"fallback: {FALLBACKS[r][2]}", True, r) for r in reason_codes
        ]
        codes = position.copy()
        for i, code in enumerate(reason_codes):
            codes[(reasons == code).to_numpy()] = len(segments) + i
        columns = list(zip(*labels, strict=True))
        rows = pd.DataFrame(
            {
                "customer_id": frame["customer_id"].to_numpy(),
                **{
                    name: pd.Categorical.from_codes(*_codes_of(codes, columns[i]))
                    for i, name in enumerate(("segment_key", "segment_name", "reason"))
                },
                "is_fallback": np.asarray(columns[3], dtype=bool)[codes],
                "fallback_reason": np.asarray(columns[4], dtype=object)[codes],
            }
        )
        return family_rows(
            rows,
            family=FAMILY,
            model_name=self.model_name,
            model_version=self.model_version,
            definition_version=self.definition.version,
            scores=rfm,
        )


def _codes_of(codes: np.ndarray, labels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """(codes, categories) of a Categorical reading labels[codes[i]], labels deduplicated."""
    categories, inverse = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
    return inverse[codes], list(categories)


def measures(predicted: pd.DataFrame, scored_recency: np.ndarray, definition: PredictionDefinition) -> pd.DataFrame:
    """The measures predictive conditions test, for the predicted customers (`predicted`: features merged
    with predictions and rfm scores); `scored_recency`: the recency of every customer the run's RFM scored."""
    horizon = definition.horizon_days
    monetary = predicted["monetary_base"].astype("float64").to_numpy()
    expected = predicted["expected_revenue_base"].astype("float64").to_numpy()
    tenure = predicted["days_since_first_order"].astype("float64").fillna(0).to_numpy()
    past_per_horizon = monetary * horizon / np.maximum(tenure, horizon)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(past_per_horizon > 0, expected / past_per_horizon - 1, np.nan)
    # R score after `horizon` more days without an order, against the run's R boundaries; F and M stay
    r = predicted["r_score"].fillna(0).astype(int).to_numpy()
    f = predicted["f_score"].fillna(0).astype(int).to_numpy()
    m = predicted["m_score"].fillna(0).astype(int).to_numpy()
    current = predicted["rfm_segment"].astype(object).fillna("").to_numpy()
    shifted_r = np.where(
        r > 0,
        recency_scores_against(scored_recency, predicted["recency_days"].astype("float64") + horizon),
        0,
    )
    codes, names = pd.factorize(name_segments(shifted_r, f, m))
    after = np.array([segment_key(n) for n in names], dtype=object)[codes]
    return pd.DataFrame(
        {
            "churn_probability": predicted["churn_probability"].astype("float64").to_numpy(),
            "value_percentile": pd.Series(expected).rank(pct=True, method="max").to_numpy(),
            "spend_percentile": pd.Series(monetary).rank(pct=True, method="max").to_numpy(),
            "value_growth": growth,
            "rfm_segment": current,
            "rfm_segment_if_no_order": np.where(r > 0, after, current),
        }
    )


def first_matching(segments: tuple[PredictiveSegment, ...], measured: pd.DataFrame) -> np.ndarray:
    """Per row of `measured`: the position of the first segment whose conditions all hold (the last
    segment has none, so every row gets one). A missing measure fails every condition on it."""
    position = np.full(len(measured), len(segments) - 1)
    open_rows = np.ones(len(measured), dtype=bool)
    for i, segment in enumerate(segments[:-1]):
        hit = open_rows.copy()
        for c in segment.conditions:
            values = measured[c.measure].to_numpy()
            if c.keys:
                inside = np.isin(values, c.keys)
                hit &= ~inside if c.negate else inside
            else:
                if c.low is not None:
                    hit &= np.nan_to_num(values, nan=-np.inf) >= c.low
                if c.high is not None:
                    hit &= np.nan_to_num(values, nan=np.inf) <= c.high
        position[hit] = i
        open_rows &= ~hit
    return position
