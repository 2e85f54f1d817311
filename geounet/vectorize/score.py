"""Polygon-level object scores in the SpaceNet manner, with merges and splits.

A predicted polygon and a true polygon match when their IoU exceeds a threshold (0.5);
matches are one-to-one, taken greedily by descending IoU (for thresholds of 0.5 and more
on non-overlapping footprints each polygon has at most one candidate anyway). Polygons
under a minimum area are dropped from both sides first, as SpaceNet drops footprints
under 20 pixels. Precision is matched / predicted, recall matched / true, F1 their
harmonic mean.

Merges and splits tell why F1 moves: a *merge* is a predicted polygon that covers at least
half of each of two or more true polygons (adjoining roofs predicted as one), a *split*
a true polygon of which two or more predicted polygons lie mostly (over half their area)
inside (one roof broken into pieces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import shapely

SPACENET_MIN_PX = 20.0  # SpaceNet ignores footprints under 20 pixels


@dataclass(frozen=True)
class PolygonScores:
    """Counts and rates of a polygon comparison (see the module docstring)."""

    tp: int
    fp: int
    fn: int
    n_pred: int
    n_true: int
    precision: float
    recall: float
    f1: float
    mean_iou: float  # mean IoU of the matched pairs
    merges: int
    merged_true: int  # true polygons inside merges
    splits: int
    split_pieces: int  # predicted polygons inside splits

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return asdict(self)


def score_polygons(
    pred: Sequence[Any] | np.ndarray,
    truth: Sequence[Any] | np.ndarray,
    *,
    iou_threshold: float = 0.5,
    min_area: float = 0.0,
) -> PolygonScores:
    """Match predicted to true polygons one-to-one at IoU > ``iou_threshold``.

    Args:
        pred: Predicted polygons (any shapely polygonal geometries, one CRS).
        truth: True polygons in the same CRS.
        iou_threshold: A pair matches when its IoU is strictly above this (SpaceNet: 0.5).
        min_area: Polygons with a smaller area (in CRS units squared) are dropped first.

    Returns:
        A :class:`PolygonScores`. With no polygons on either side all rates are 1.0.
    """
    if not 0.0 <= iou_threshold < 1.0:
        raise ValueError(f"iou_threshold must lie in [0, 1), got {iou_threshold}")
    p = scored_polygons(pred, min_area)
    t = scored_polygons(truth, min_area)
    n_pred, n_true = len(p), len(t)
    pairs = _overlaps(p, t)
    tp, ious = _match(pairs, iou_threshold)
    merges, merged_true, splits, split_pieces = _merges_splits(pairs, p, t)
    precision = tp / n_pred if n_pred else (1.0 if not n_true else 0.0)
    recall = tp / n_true if n_true else (1.0 if not n_pred else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PolygonScores(
        tp=tp,
        fp=n_pred - tp,
        fn=n_true - tp,
        n_pred=n_pred,
        n_true=n_true,
        precision=precision,
        recall=recall,
        f1=f1,
        mean_iou=float(np.mean(ious)) if ious else 0.0,
        merges=merges,
        merged_true=merged_true,
        splits=splits,
        split_pieces=split_pieces,
    )


def matched_flags(
    pred: Sequence[Any] | np.ndarray,
    truth: Sequence[Any] | np.ndarray,
    *,
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Which predicted and which true polygons :func:`score_polygons` matches (for figures).

    Returns:
        Two boolean arrays aligned with ``pred`` and ``truth`` (no area filter).
    """
    p = np.asarray(list(pred), dtype=object)
    t = np.asarray(list(truth), dtype=object)
    flags_p, flags_t = np.zeros(len(p), bool), np.zeros(len(t), bool)
    if not p.size or not t.size:
        return flags_p, flags_t
    pairs = _overlaps(shapely.make_valid(p), shapely.make_valid(t))
    for k in np.argsort(-pairs["iou"], kind="stable"):
        if pairs["iou"][k] <= iou_threshold:
            break
        a, b = int(pairs["p"][k]), int(pairs["t"][k])
        if not (flags_p[a] or flags_t[b]):
            flags_p[a] = flags_t[b] = True
    return flags_p, flags_t


def scored_polygons(geoms: Sequence[Any] | np.ndarray, min_area: float) -> np.ndarray:
    """The polygons that are scored: made valid, without empty ones and those smaller
    than ``min_area``."""
    g = np.asarray(list(geoms), dtype=object)
    if g.size == 0:
        return g
    g = shapely.make_valid(g)
    keep = ~shapely.is_empty(g) & (shapely.area(g) >= max(min_area, 1e-12))
    return g[keep]


def _overlaps(p: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """Every intersecting (pred, true) pair with its intersection and union areas."""
    empty = np.zeros(0, np.int64)
    if not p.size or not t.size:
        return {"p": empty, "t": empty, "inter": np.zeros(0), "iou": np.zeros(0)}
    tree = shapely.STRtree(t)
    pi, ti = tree.query(p, predicate="intersects")
    inter = shapely.area(shapely.intersection(p[pi], t[ti]))
    area_p, area_t = shapely.area(p), shapely.area(t)
    union = area_p[pi] + area_t[ti] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return {"p": pi, "t": ti, "inter": inter, "iou": iou, "area_p": area_p, "area_t": area_t}


def _match(pairs: dict[str, np.ndarray], threshold: float) -> tuple[int, list[float]]:
    order = np.argsort(-pairs["iou"], kind="stable")
    used_p: set[int] = set()
    used_t: set[int] = set()
    ious = []
    for k in order:
        iou = float(pairs["iou"][k])
        if iou <= threshold:
            break
        a, b = int(pairs["p"][k]), int(pairs["t"][k])
        if a in used_p or b in used_t:
            continue
        used_p.add(a)
        used_t.add(b)
        ious.append(iou)
    return len(ious), ious


def _merges_splits(
    pairs: dict[str, np.ndarray], p: np.ndarray, t: np.ndarray
) -> tuple[int, int, int, int]:
    if not pairs["p"].size:
        return 0, 0, 0, 0
    inter = pairs["inter"]
    covers_true = inter >= 0.5 * pairs["area_t"][pairs["t"]]
    inside_true = inter > 0.5 * pairs["area_p"][pairs["p"]]
    per_pred = np.bincount(pairs["p"][covers_true], minlength=len(p))
    per_true = np.bincount(pairs["t"][inside_true], minlength=len(t))
    merged = per_pred >= 2
    split = per_true >= 2
    return (
        int(merged.sum()),
        int(per_pred[merged].sum()),
        int(split.sum()),
        int(per_true[split].sum()),
    )
