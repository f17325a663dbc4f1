"""Segment names follow the measured profile: a name promising repeat purchases needs repeat buyers."""

import numpy as np

from ml.segmentation.definition import load_definition
from ml.segmentation.training import ONE_TIME_NAME, name_clusters


def centroids_for(definition, **z):
    """One standardised centroid row with the given z-scores (0 elsewhere)."""
    row = np.zeros(len(definition.features))
    for feature, value in z.items():
        row[definition.features.index(feature)] = value
    return row


def test_regulars_only_where_most_customers_bought_more_than_once():
    definition = load_definition()
    # two clusters whose centroids both read "Steady regulars" (order rate above average)
    centroids = np.vstack([centroids_for(definition, order_rate_per_year=0.3)] * 2)
    sizes = np.array([60, 40])
    names, keys, _ = name_clusters(centroids, sizes, definition, repeat_share={0: 0.2, 1: 0.8})
    assert names == {0: ONE_TIME_NAME, 1: "Steady regulars"}
    assert keys[0] == "behavioural_one_time_buyers"
    # without the measured profile (no frequency available) the rules alone decide, as before
    unguarded, _, _ = name_clusters(centroids, sizes, definition)
    assert unguarded[0] == "Steady regulars"


def test_names_without_a_repeat_promise_are_left_as_the_rules_give_them():
    definition = load_definition()
    centroids = np.vstack([centroids_for(definition, recency_days=1.5, order_rate_per_year=-1.0)])
    names, _, _ = name_clusters(centroids, np.array([10]), definition, repeat_share={0: 0.0})
    assert names == {0: "Dormant customers"}
