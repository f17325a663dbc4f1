import numpy as np
from sklearn.metrics import adjusted_rand_score

from ml.segment_definitions import load_definition
from ml.segmentation import prepare_features, train_segmentation
from tests.unit.ml_fixtures import planted_features

DEFINITION = load_definition()


def test_recovers_planted_groups_with_stable_explained_segments():
    df, truth = planted_features()
    trained = train_segmentation(df, DEFINITION, seed=0, sample_size=5000)
    labels = trained.pipeline.predict(df)
    assert 3 <= trained.k <= 7
    assert trained.algorithm in ("kmeans", "gaussian_mixture")
    assert {c.algorithm for c in trained.candidates} == {"kmeans", "gaussian_mixture"}
    assert adjusted_rand_score(truth, labels) > 0.7
    assert trained.metrics["stability_ari"] >= 0.85
    assert trained.metrics["surrogate_fidelity"] >= 0.9
    assert len(set(trained.names.values())) == trained.k
    assert len(set(trained.keys.values())) == trained.k
    assert trained.profile["customers"].sum() == len(df)
    assert abs(trained.profile["share"].sum() - 1) < 1e-9
    assert trained.profile["rule"].str.contains("<=|>").all()
    assert trained.definition_version == DEFINITION.version


def test_nulls_are_handled_by_explicit_rules():
    df, _ = planted_features(40)
    df.loc[:10, ["recency_days", "aov_eur", "return_rate", "avg_csat"]] = np.nan
    x = prepare_features(df)
    assert np.isfinite(x).all()
    assert train_segmentation(df, DEFINITION, k_range=range(3, 5)).k in (3, 4)


def test_tiny_population():
    df, _ = planted_features(10)  # 50 rows
    trained = train_segmentation(df, DEFINITION)
    assert trained.n_rows == 50 and 3 <= trained.k <= 7
