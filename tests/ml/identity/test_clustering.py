"""Guardrails of identity clustering: bridges are cut, oversized clusters are split, all deterministic."""

from __future__ import annotations

import numpy as np

from ml.identity.clustering import components, corroborated_merges, resolve_clusters, split_bridged_component


def _partition(labels: np.ndarray) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for node, label in enumerate(labels.tolist()):
        groups.setdefault(label, set()).add(node)
    return {frozenset(g) for g in groups.values()}


def test_components_of_a_small_graph():
    labels = components(6, np.array([0, 1, 3]), np.array([1, 2, 4]))
    assert _partition(labels) == {frozenset({0, 1, 2}), frozenset({3, 4}), frozenset({5})}


def test_nameless_bridge_record_is_cut_out():
    # Anna (0, 1) and her husband Ben (2, 3) share a family e-mail; device 4 used it and links both.
    nodes = [0, 1, 2, 3, 4]
    edges = [(0, 1, 5.0), (2, 3, 5.0), (1, 4, 3.0), (3, 4, 3.0)]
    conflicts = [(0, 2), (0, 3), (1, 2), (1, 3)]
    parts, cut, how = split_bridged_component(nodes, edges, conflicts, nameless={4})
    assert cut == [4]
    assert sorted(parts) == [[0, 1], [2, 3]]
    assert "contradict" in how


def test_without_a_single_bridge_the_weakest_links_are_cut():
    # two contradicting records joined by two parallel paths: no single record separates them
    nodes = [0, 1, 2, 3]
    edges = [(0, 1, 0.995), (1, 3, 4.0), (0, 2, 0.991), (2, 3, 4.0)]
    parts, cut, _ = split_bridged_component(nodes, edges, [(0, 3)], nameless=set())
    assert cut == [] or len(cut) == 1
    flat = [set(p) for p in parts] + [{c} for c in cut]
    assert not any({0, 3} <= p for p in flat)
    assert sorted(n for p in flat for n in p) == nodes


def test_resolve_clusters_splits_bridges_and_is_deterministic():
    left = np.array([0, 2, 1, 3])
    right = np.array([1, 3, 4, 4])
    strength = np.array([5.0, 5.0, 3.0, 3.0])
    first = resolve_clusters(6, left, right, strength, {0: [(0, 2)]}, {4}, max_cluster_size=50, strong_strength=0.9999)
    # the component label of nodes 0..4 is the one scipy gives node 0
    label = int(components(6, left, right)[0])
    assert label == 0
    again = resolve_clusters(
        6, left[::-1].copy(), right[::-1].copy(), strength[::-1].copy(), {0: [(2, 0)]}, {4}, 50, 0.9999
    )
    assert (
        _partition(first.labels)
        == _partition(again.labels)
        == {frozenset({0, 1}), frozenset({2, 3}), frozenset({4}), frozenset({5})}
    )
    assert [r.kind for r in first.reviews] == ["bridge"]
    assert first.cut_nodes == {4}


def test_oversized_cluster_is_rebuilt_from_strong_links_and_listed():
    # a chain of 6 records: strong links 0-1-2 and 3-4-5, one weak Splink link 2-3 joins them
    left = np.array([0, 1, 2, 3, 4])
    right = np.array([1, 2, 3, 4, 5])
    strength = np.array([5.0, 5.0, 0.995, 5.0, 5.0])
    result = resolve_clusters(6, left, right, strength, {}, set(), max_cluster_size=4, strong_strength=0.9999)
    assert _partition(result.labels) == {frozenset({0, 1, 2}), frozenset({3, 4, 5})}
    assert [r.kind for r in result.reviews] == ["oversized_cluster"]


def test_oversized_cluster_of_strong_links_falls_apart_into_single_records():
    left = np.array([0, 1, 2])
    right = np.array([1, 2, 3])
    result = resolve_clusters(4, left, right, np.full(3, 5.0), {}, set(), max_cluster_size=3, strong_strength=0.9999)
    assert _partition(result.labels) == {frozenset({n}) for n in range(4)}
    assert "left single" in result.reviews[0].detail


def _corroborated(n, sure, pairs, threshold=0.5, min_support=0.3, weight=None):
    sure_l = np.array([a for a, _ in sure], dtype=np.int64)
    sure_r = np.array([b for _, b in sure], dtype=np.int64)
    return corroborated_merges(
        n,
        sure_l,
        sure_r,
        np.array([a for a, _, _ in pairs], dtype=np.int64),
        np.array([b for _, b, _ in pairs], dtype=np.int64),
        np.array([p for _, _, p in pairs], dtype=np.float64),
        np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64),
        threshold,
        min_support,
    )


def test_one_probable_link_does_not_pull_a_record_into_a_family():
    # records 0-4 are one person (sure links); record 5 resembles only record 2 (0.73) and no other
    groups = _corroborated(6, [(0, 1), (1, 2), (2, 3), (3, 4)], [(2, 5, 0.73)])
    assert _partition(groups) == {frozenset({0, 1, 2, 3, 4}), frozenset({5})}


def test_a_record_that_resembles_most_of_a_group_joins_it():
    groups = _corroborated(4, [(0, 1), (1, 2)], [(0, 3, 0.8), (1, 3, 0.6), (2, 3, 0.2)])
    assert _partition(groups) == {frozenset({0, 1, 2, 3})}


def test_probable_links_need_one_pair_at_the_threshold():
    # support 0.45 on average, but no pair reaches the threshold: no link to corroborate
    groups = _corroborated(2, [], [(0, 1, 0.45)], threshold=0.5, min_support=0.3)
    assert _partition(groups) == {frozenset({0}), frozenset({1})}


def test_merges_go_best_first_and_groups_are_judged_whole():
    # 0-1 (0.95) and 2-3 (0.9) merge first; then {0,1} and {2,3} are judged on all four pairs between them
    pairs = [(0, 1, 0.95), (0, 2, 0.7), (1, 2, 0.6), (2, 3, 0.9)]
    groups = _corroborated(4, [], [*pairs, (1, 3, 0.5), (0, 3, 0.1)])  # average 0.475
    assert _partition(groups) == {frozenset({0, 1, 2, 3})}
    groups = _corroborated(4, [], pairs, min_support=0.35)  # average 0.325
    assert _partition(groups) == {frozenset({0, 1}), frozenset({2, 3})}


def test_records_splink_never_scores_do_not_dilute_support():
    # node 2 is a device (no profile, weight 0) joined to node 0 by a rule
    groups = _corroborated(4, [(0, 2)], [(0, 3, 0.6), (1, 3, 0.05)], weight=[1, 1, 0, 1])
    assert _partition(groups) == {frozenset({0, 2, 3}), frozenset({1})}
