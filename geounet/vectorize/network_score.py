"""Scores of road networks: completeness / correctness / quality and APLS.

- Completeness, correctness and quality (Wiedemann et al. 1998): the share of the true
  centre lines within ``tolerance`` of the predicted ones, the share of the predicted
  centre lines within ``tolerance`` of the true ones, and matched predicted length over
  (predicted length + unmatched true length). Centre lines are the masks' skeletons.
- APLS, the SpaceNet 3 average path length similarity (Van Etten et al. 2018): control
  nodes every ``spacing`` along the true graph are snapped onto the proposal (within
  ``buffer``, the edge is split there); for every pair of nodes joined in the truth, the
  difference of shortest-path lengths counts ``min(1, |L_true - L_prop| / L_true)`` (1
  where a node does not snap or the proposal has no path). ``1 -`` the mean difference,
  computed both ways, combined as the harmonic mean: identical graphs score 1.
"""

from __future__ import annotations

import itertools
from typing import Any

import networkx as nx
import numpy as np
import shapely
import shapely.affinity
import shapely.ops
from scipy import ndimage
from shapely.geometry import Point

from geounet.vectorize.network import (
    NetworkParams,
    clean_network,
    lines_graph,
    links_to_lines,
    pixel_links,
    skeleton,
    split_edge,
)

APLS_SPACING_M = 50.0  # SpaceNet 3: control nodes every 50 m
APLS_BUFFER_M = 4.0  # SpaceNet 3: nodes snap within 4 m


def buffer_counts(pred: np.ndarray, truth: np.ndarray, tolerance: float) -> dict[str, int]:
    """Centre-line pixels of two road masks and how many lie within ``tolerance``
    pixels of the other's centre lines (sums over regions pool the scores)."""
    return skeleton_counts(skeleton(pred), skeleton(truth), tolerance)


def skeleton_counts(p: np.ndarray, t: np.ndarray, tolerance: float) -> dict[str, int]:
    """:func:`buffer_counts` of the predicted and true skeletons ``p`` and ``t``."""
    near_p = ndimage.distance_transform_edt(~p) <= tolerance if p.any() else np.zeros_like(p)
    near_t = ndimage.distance_transform_edt(~t) <= tolerance if t.any() else np.zeros_like(t)
    return {
        "true_px": int(t.sum()),
        "true_matched_px": int((t & near_p).sum()),
        "pred_px": int(p.sum()),
        "pred_matched_px": int((p & near_t).sum()),
    }


def buffer_scores(counts: dict[str, int]) -> dict[str, float | None]:
    """Completeness, correctness and quality of :func:`buffer_counts` (None when
    undefined: no true or no predicted roads)."""
    t, tm = counts["true_px"], counts["true_matched_px"]
    p, pm = counts["pred_px"], counts["pred_matched_px"]
    completeness = tm / t if t else None
    correctness = pm / p if p else None
    quality = pm / (p + t - tm) if p + t - tm > 0 else None
    return {"completeness": completeness, "correctness": correctness, "quality": quality}


def densify(graph: nx.MultiGraph, spacing: float | None) -> nx.MultiGraph:
    """A copy of ``graph`` with a node at least every ``spacing`` along each edge."""
    out = nx.MultiGraph()
    out.add_nodes_from(graph.nodes(data=True))
    for _, _, data in graph.edges(data=True):
        line = data["geometry"]
        pieces = max(1, int(np.ceil(line.length / spacing))) if spacing else 1
        cuts = np.linspace(0.0, line.length, pieces + 1)
        for a, b in itertools.pairwise(cuts):
            part = shapely.ops.substring(line, a, b)
            if part.length == 0:
                continue
            # nodes are coordinate tuples: the piece's own ends, whatever the direction
            # in which the graph lists the edge
            start, stop = tuple(part.coords[0]), tuple(part.coords[-1])
            out.add_node(start, point=start)
            out.add_node(stop, point=stop)
            out.add_edge(start, stop, geometry=part, length=part.length)
    return out


def _snap(graph: nx.MultiGraph, nodes: list, buffer: float) -> dict:
    """Insert each of ``nodes`` (coordinates) into ``graph`` at the nearest point of its
    edges within ``buffer``; returns node -> node of ``graph`` (None: too far)."""
    mapping: dict = {}
    for node in nodes:
        edges = list(graph.edges(keys=True, data="geometry"))
        if not edges:
            mapping[node] = None
            continue
        p = Point(node)
        d = shapely.distance(np.asarray([e[3] for e in edges], dtype=object), p)
        k = int(np.argmin(d))
        if d[k] > buffer:
            mapping[node] = None
            continue
        u, v, key, _ = edges[k]
        mapping[node] = split_edge(graph, u, v, key, p)
    return mapping


def apls_one_way(
    truth: nx.MultiGraph, proposal: nx.MultiGraph, buffer: float = APLS_BUFFER_M
) -> float | None:
    """``1 -`` the mean path-length difference of node pairs of ``truth`` (already
    densified) measured in ``proposal``; None when ``truth`` has no connected pair."""
    proposal = proposal.copy()
    nodes = list(truth.nodes)
    mapping = _snap(proposal, nodes, buffer)
    true_len = dict(nx.all_pairs_dijkstra_path_length(truth, weight="length"))
    mapped = {m for m in mapping.values() if m is not None}
    prop_len = {
        n: nx.single_source_dijkstra_path_length(proposal, n, weight="length") for n in mapped
    }
    diffs = []
    for a, b in itertools.combinations(nodes, 2):
        lt = true_len[a].get(b)
        if lt is None or lt <= 0:
            continue  # not joined in the truth: no path to compare
        ma, mb = mapping[a], mapping[b]
        lp = prop_len[ma].get(mb) if ma is not None and mb is not None else None
        diffs.append(1.0 if lp is None else min(1.0, abs(lt - lp) / lt))
    return 1.0 - float(np.mean(diffs)) if diffs else None


def apls(
    truth: nx.MultiGraph,
    proposal: nx.MultiGraph,
    *,
    spacing: float | None = APLS_SPACING_M,
    buffer: float = APLS_BUFFER_M,
) -> dict[str, float | None]:
    """APLS of a proposal graph against the true graph (both with ``length`` and
    ``geometry`` edges in the same metric coordinates).

    Returns:
        ``apls`` (harmonic mean of both directions; 0 when either is 0), ``apls_gt_to_prop``
        (penalises missed roads) and ``apls_prop_to_gt`` (penalises invented roads);
        where the truth has no road, 0 for a proposal with roads (as SpaceNet) and None
        for an empty one.
    """
    t, p = densify(truth, spacing), densify(proposal, spacing)
    forward = apls_one_way(t, p, buffer)
    if forward is None:  # no true road: undefined, unless roads were invented (0)
        invented = 0.0 if p.number_of_edges() else None
        return {"apls": invented, "apls_gt_to_prop": None, "apls_prop_to_gt": invented}
    backward = apls_one_way(p, t, buffer)
    backward = 0.0 if backward is None else backward  # nothing found: nothing similar
    both = 2 * forward * backward / (forward + backward) if forward and backward else 0.0
    return {"apls": both, "apls_gt_to_prop": forward, "apls_prop_to_gt": backward}


def skeleton_lines(skel: np.ndarray, params: NetworkParams) -> list:
    """The cleaned road network of an in-memory skeleton as lines in pixel coordinates."""
    return clean_network(links_to_lines(pixel_links(skel)), params)


def scaled_graph(lines: list, scale: float = 1.0) -> nx.MultiGraph:
    """A graph of pixel-coordinate lines scaled by ``scale`` (metres per pixel)."""
    if scale != 1.0:
        lines = [shapely.affinity.scale(g, scale, scale, origin=(0, 0)) for g in lines]
    return lines_graph(lines)


def road_scores(
    pred: np.ndarray, truth: np.ndarray, pixel_m: float, settings: dict[str, Any]
) -> dict[str, Any]:
    """Buffer counts and APLS of a predicted road mask against the true one.

    Args:
        pred, truth: Boolean road masks of one region.
        pixel_m: Pixel size in metres.
        settings: The model's ``lines`` record (``tolerance_m``, spur, gap, min length).
    """
    tolerance = settings.get("tolerance_m", 3.0) / pixel_m
    pred_skel, true_skel = skeleton(pred), skeleton(truth)  # once, for both scores
    counts = skeleton_counts(pred_skel, true_skel, tolerance)

    def params(clean: bool) -> NetworkParams:
        if not clean:  # the truth: its skeleton as it is, bar pixel fringes
            return NetworkParams(spur=2.0, min_length=2.0)
        return NetworkParams(
            spur=settings.get("spur_m", 10.0) / pixel_m,
            gap=settings.get("gap_m", 10.0) / pixel_m,
            min_length=settings.get("min_length_m", 10.0) / pixel_m,
        )

    true_lines = skeleton_lines(true_skel, params(False))
    pred_lines = skeleton_lines(pred_skel, params(True))
    scores = apls(
        scaled_graph(true_lines, pixel_m),
        scaled_graph(pred_lines, pixel_m),
        buffer=max(APLS_BUFFER_M, settings.get("tolerance_m", 3.0)),
    )
    return {"counts": counts, "lines": (pred_lines, true_lines), **scores}


class RoadScores:
    """Road scores pooled over regions (scenes, strips, chips): buffer counts summed,
    APLS averaged over regions with roads.

    Args:
        settings: The model's ``lines`` record.
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.counts = {"true_px": 0, "true_matched_px": 0, "pred_px": 0, "pred_matched_px": 0}
        self.apls: list[dict[str, float | None]] = []
        self.lines: list[tuple[list, list]] = []  # (predicted, true) lines per region, px

    def add(self, pred: np.ndarray, truth: np.ndarray, pixel_m: float) -> None:
        """Score one region's boolean road masks (pixels of ``pixel_m`` metres)."""
        scores = road_scores(pred, truth, pixel_m, self.settings)
        for key, value in scores.pop("counts").items():
            self.counts[key] += value
        self.lines.append(scores.pop("lines"))
        if scores["apls"] is not None:
            self.apls.append(scores)

    def result(self) -> dict[str, Any]:
        """Completeness, correctness, quality, mean APLS (both ways) and the counts."""

        def mean(key: str) -> float | None:
            values = [s[key] for s in self.apls if s[key] is not None]
            return float(np.mean(values)) if values else None

        return {
            **buffer_scores(self.counts),
            "apls": mean("apls"),
            "apls_gt_to_prop": mean("apls_gt_to_prop"),
            "apls_prop_to_gt": mean("apls_prop_to_gt"),
            "apls_regions": len(self.apls),
            "tolerance_m": self.settings.get("tolerance_m", 3.0),
            **self.counts,
        }
