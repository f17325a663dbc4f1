"""From links to people: connected components with guardrails.

Links (rule edges and Splink pairs) are joined into connected components. Two guardrails keep one
bad link from fusing two people:

- **bridges**: a component holding two records that contradict each other (different given names
  or birth dates) was joined through a bridge. The bridge is found and cut: first a single record
  whose removal separates every contradiction (typically a nameless record such as a device that
  used a family e-mail), else the weakest links on the paths between the contradicting records.
- **size**: a component larger than `max_cluster_size` is rebuilt from strong links only; what is
  still too large is split into single records.

Every cut is returned as a review item; nothing suspicious is merged silently.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Strength of a link when a cut has to choose (higher = kept longer).
RULE_STRENGTH = {
    "override_link": 10.0,  # a reviewer's decision
    "identical_profile": 5.0,
    "erp_crm_reference": 4.0,
    "ticket_erp_account": 4.0,
    "ticket_crm_reference": 4.0,
    "event_login": 4.0,
    "email": 3.0,
    "phone_surname": 3.0,
}


@dataclass
class ReviewItem:
    """One suspicious situation for a human: what was cut and why."""

    kind: str  # bridge | oversized_cluster
    record_nodes: list[int]
    detail: str


@dataclass
class ClusterResult:
    labels: np.ndarray  # cluster label per node
    reviews: list[ReviewItem] = field(default_factory=list)
    cut_nodes: set[int] = field(default_factory=set)


def components(n_nodes: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component label per node (scipy, linear in nodes + edges)."""
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    return labels


def _sub_components(nodes: list[int], adjacency: dict[int, dict[int, float]], removed: set[int]) -> dict[int, int]:
    """Component index per node of the subgraph without `removed` nodes (BFS; clusters are small)."""
    label: dict[int, int] = {}
    current = 0
    for start in nodes:
        if start in removed or start in label:
            continue
        label[start] = current
        queue = deque([start])
        while queue:
            u = queue.popleft()
            for v in adjacency[u]:
                if v not in removed and v not in label:
                    label[v] = current
                    queue.append(v)
        current += 1
    return label


def _separates(conflicts: list[tuple[int, int]], label: dict[int, int]) -> bool:
    return all(label.get(a) != label.get(b) for a, b in conflicts if a in label and b in label)


def _weakest_link_on_path(adjacency: dict[int, dict[int, float]], a: int, b: int) -> tuple[int, int] | None:
    """The weakest edge on a shortest path from a to b, or None when they are not connected."""
    parent = {a: a}
    queue = deque([a])
    while queue:
        u = queue.popleft()
        if u == b:
            break
        for v in sorted(adjacency[u]):
            if v not in parent:
                parent[v] = u
                queue.append(v)
    if b not in parent:
        return None
    path = []
    v = b
    while v != a:
        u = parent[v]
        path.append((adjacency[u][v], min(u, v), max(u, v)))
        v = u
    _, u, v = min(path)  # the weakest; ties broken by node ids
    return u, v


def split_bridged_component(
    nodes: list[int],
    edges: list[tuple[int, int, float]],
    conflicts: list[tuple[int, int]],
    nameless: set[int],
) -> tuple[list[list[int]], list[int], str]:
    """Split one component whose records contradict each other.

    Returns (parts, cut records, how). Cut records become customers of their own; parts keep the
    remaining records so that no part holds a contradiction.
    """
    adjacency: dict[int, dict[int, float]] = defaultdict(dict)
    for u, v, w in edges:
        adjacency[u][v] = max(w, adjacency[u].get(v, 0.0))
        adjacency[v][u] = adjacency[u][v]
    for u in nodes:
        adjacency.setdefault(u, {})
    # 1. a single record whose removal separates every contradiction; nameless records first,
    # then the best-connected ones
    order = sorted(nodes, key=lambda u: (u not in nameless, -len(adjacency[u]), u))
    for candidate in order:
        label = _sub_components(nodes, adjacency, {candidate})
        if _separates(conflicts, label):
            return _group(label), [candidate], "record links people who contradict each other"
    # 2. cut the weakest link on a path between contradicting records until none is connected
    for _ in range(len(edges) + 1):
        label = _sub_components(nodes, adjacency, set())
        pending = [(a, b) for a, b in conflicts if label[a] == label[b]]
        if not pending:
            return _group(label), [], "weakest links between contradicting records cut"
        edge = _weakest_link_on_path(adjacency, *pending[0])
        if edge is None:  # cannot happen: same label means connected
            break
        u, v = edge
        del adjacency[u][v]
        del adjacency[v][u]
    return [[u] for u in nodes], [], "split into single records"


def _group(label: dict[int, int]) -> list[list[int]]:
    parts: dict[int, list[int]] = defaultdict(list)
    for node, comp in label.items():
        parts[comp].append(node)
    return [sorted(p) for p in parts.values()]


def resolve_clusters(
    n_nodes: int,
    edge_left: np.ndarray,
    edge_right: np.ndarray,
    edge_strength: np.ndarray,
    conflict_pairs: dict[int, list[tuple[int, int]]],
    nameless: set[int],
    max_cluster_size: int,
    strong_strength: float,
) -> ClusterResult:
    """Cluster labels per node after both guardrails.

    conflict_pairs: per initial component label, the node pairs in it that contradict each other
    (computed in SQL by the caller from `components()` labels, which this function recomputes
    identically). edge_strength: RULE_STRENGTH for rule edges, the match probability for Splink.
    """
    labels = components(n_nodes, edge_left, edge_right)
    result = ClusterResult(labels=labels.copy())
    next_label = int(labels.max()) + 1 if n_nodes else 0
    suspicious = set(conflict_pairs)
    sizes = np.bincount(labels, minlength=1)
    oversized = set(np.flatnonzero(sizes > max_cluster_size).tolist())
    if not suspicious and not oversized:
        return result
    # edges of the components that need work, grouped by component
    touched = np.isin(labels[edge_left], list(suspicious | oversized))
    by_comp: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    # the three are parallel edge arrays under one mask: equal length by construction
    for u, v, w in zip(
        edge_left[touched].tolist(), edge_right[touched].tolist(), edge_strength[touched].tolist(), strict=True
    ):
        by_comp[int(labels[u])].append((u, v, w))
    members: dict[int, list[int]] = defaultdict(list)
    for node in np.flatnonzero(np.isin(labels, list(suspicious | oversized))).tolist():
        members[int(labels[node])].append(node)

    for comp in sorted(suspicious | oversized):
        # sorted, so that the same graph is always cut the same way
        nodes, edges = sorted(members[comp]), sorted(by_comp[comp])
        parts: list[list[int]] = [nodes]
        if comp in oversized:
            strong = [(u, v, w) for u, v, w in edges if w >= strong_strength]
            adjacency: dict[int, dict[int, float]] = defaultdict(dict)
            for u, v, w in strong:
                adjacency[u][v] = w
                adjacency[v][u] = w
            for u in nodes:
                adjacency.setdefault(u, {})
            parts = _group(_sub_components(nodes, adjacency, set()))
            too_big = [p for p in parts if len(p) > max_cluster_size]
            parts = [p for p in parts if len(p) <= max_cluster_size] + [[u] for p in too_big for u in p]
            result.reviews.append(
                ReviewItem(
                    "oversized_cluster",
                    sorted(nodes),
                    f"{len(nodes)} records exceed max_cluster_size={max_cluster_size}: rebuilt from strong links "
                    f"into {len(parts)} customers"
                    + (f"; {sum(map(len, too_big))} records left single" if too_big else ""),
                )
            )
        if comp in suspicious:
            conflicts = sorted({(min(a, b), max(a, b)) for a, b in conflict_pairs[comp]})
            refined: list[list[int]] = []
            for part in parts:
                in_part = set(part)
                part_conflicts = [(a, b) for a, b in conflicts if a in in_part and b in in_part]
                if not part_conflicts:
                    refined.append(part)
                    continue
                part_edges = [(u, v, w) for u, v, w in edges if u in in_part and v in in_part]
                pieces, cut, how = split_bridged_component(part, part_edges, part_conflicts, nameless)
                refined.extend(pieces)
                refined.extend([u] for u in cut)
                result.cut_nodes.update(cut)
                result.reviews.append(
                    ReviewItem(
                        "bridge", sorted(part), f"{how}; cut {cut or 'links'} into {len(pieces) + len(cut)} customers"
                    )
                )
            parts = refined
        for part in parts[1:]:
            result.labels[part] = next_label
            next_label += 1
    return result


def corroborated_merges(
    n_nodes: int,
    sure_left: np.ndarray,
    sure_right: np.ndarray,
    pair_left: np.ndarray,
    pair_right: np.ndarray,
    pair_probability: np.ndarray,
    weight: np.ndarray,
    threshold: float,
    min_support: float,
) -> np.ndarray:
    """Group label per node after merging groups on probable (not sure) links only where the pairs
    between them corroborate the link.

    Sure links (rules, identical profiles, Splink pairs at or above the sure probability) join
    groups unconditionally. A probable link (at or above `threshold`) would join two whole groups
    through one pair: one record that resembles one member of a family is not the family. So groups
    are merged greedily, best first, while the average probability over *all* pairs between them
    (profile pairs: `weight` counts a node's profiles, 0 for records Splink never scores; a pair not
    scored counts 0) is at least `min_support` and one link between them reaches `threshold`
    (average linkage, Splink's scores as similarities).

    pair_*: every scored pair (at or above the review floor) that no guard vetoed.
    """
    groups = components(n_nodes, sure_left, sure_right)
    n_groups = int(groups.max()) + 1 if n_nodes else 0
    size = np.bincount(groups, weights=weight, minlength=n_groups).astype(np.float64)
    gl, gr = groups[pair_left], groups[pair_right]
    between = gl != gr
    # per unordered group pair: sum of probabilities and the best one
    adjacency: dict[int, dict[int, list[float]]] = defaultdict(dict)
    for a, b, p in zip(gl[between].tolist(), gr[between].tolist(), pair_probability[between].tolist(), strict=True):
        entry = adjacency[a].get(b)
        if entry is None:
            entry = [0.0, 0.0]
            adjacency[a][b] = entry
            adjacency[b][a] = entry
        entry[0] += p
        entry[1] = max(entry[1], p)

    def support(a: int, b: int) -> float:
        total, _ = adjacency[a][b]
        return total / max(size[a] * size[b], 1.0)

    heap = [
        (-support(a, b), a, b)
        for a, neighbours in adjacency.items()
        for b, (_, best) in neighbours.items()
        if a < b and best >= threshold
    ]
    heapq.heapify(heap)
    parent = np.arange(n_groups)
    while heap:
        negative, a, b = heapq.heappop(heap)
        if parent[a] != a or parent[b] != b or b not in adjacency[a]:
            continue  # a group merged away since
        current = support(a, b)
        if -negative != current:
            heapq.heappush(heap, (-current, a, b))
            continue
        if current < min_support:
            break  # every other candidate is weaker
        keep, gone = (a, b) if size[a] >= size[b] else (b, a)
        parent[gone] = keep
        size[keep] += size[gone]
        del adjacency[keep][gone]
        for other, entry in adjacency.pop(gone).items():
            if other == keep:
                continue
            del adjacency[other][gone]
            mine = adjacency[keep].get(other)
            if mine is None:
                adjacency[keep][other] = adjacency[other][keep] = entry
            else:
                mine[0] += entry[0]
                mine[1] = max(mine[1], entry[1])
        for other, (_, best) in adjacency[keep].items():
            if best >= threshold:
                heapq.heappush(heap, (-support(keep, other), min(keep, other), max(keep, other)))
    # follow merges to the surviving group
    root = parent.copy()
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    return root[groups]
