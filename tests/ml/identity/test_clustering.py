"""Guardrails of identity clustering: bridges are cut, oversized clusters are split, all deterministic."""

from __future__ import annotations

import numpy as np

from ml.identity.clustering import components, resolve_clusters, split_bridged_component


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
