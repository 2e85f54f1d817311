"""Segmentation metrics: pixel-level confusion matrix scores, boundary and object metrics.

* :class:`ConfusionMatrix` accumulates a K x K matrix over an epoch and derives per-class and
  averaged IoU / Dice / precision / recall (:meth:`ConfusionMatrix.scores`).
* :func:`hausdorff_distance` measures boundary agreement of two masks (HD, HD95), in pixels or
  in map units.
* :func:`object_f1` scores instance-like classes (buildings) by matching connected components,
  as in the SpaceNet metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

_RESERVED_KEYS = frozenset(
    {
        "macro_iou",
        "macro_dice",
        "macro_precision",
        "macro_recall",
        "micro_iou",
        "micro_dice",
        "micro_precision",
        "micro_recall",
        "pixel_accuracy",
        "confusion_matrix",
    }
)

# Above this many (n_pred + 1) * (n_true + 1) label pairs, object_f1 counts overlaps sparsely.
_DENSE_PAIR_LIMIT = 1 << 24


def predicted_classes(logits: Tensor) -> Tensor:
    """Class ids from logits: threshold 0 for one channel, argmax otherwise."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den == 0``."""
    out = np.zeros(np.shape(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _maybe(value: float) -> float | None:
    """``None`` for NaN (JSON has no NaN), a plain float otherwise."""
    return None if np.isnan(value) else float(value)


class ConfusionMatrix:
    """An accumulating K x K confusion matrix (rows = truth, columns = prediction)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor, ignore_index: int | None = None) -> None:
        """Add a batch of predicted and true class ids (any matching shapes).

        Args:
            pred: Predicted class ids.
            target: True class ids, same number of elements as ``pred``.
            ignore_index: Pixels whose *target* equals this value are skipped (the prediction
                there is irrelevant), as in torchmetrics.

        Raises:
            ValueError: If the shapes differ or a (non-ignored) id is outside ``[0, K)``.
        """
        k = self.num_classes
        pred = torch.as_tensor(pred).flatten().long().cpu()
        target = torch.as_tensor(target).flatten().long().cpu()
        if pred.shape != target.shape:
            raise ValueError(f"pred has {pred.numel()} elements, target {target.numel()}")
        if ignore_index is not None:
            keep = target != ignore_index
            pred, target = pred[keep], target[keep]
        if target.numel() == 0:
            return
        low = min(int(pred.min()), int(target.min()))
        high = max(int(pred.max()), int(target.max()))
        if low < 0 or high >= k:
            raise ValueError(f"class ids must lie in [0, {k}), got values in [{low}, {high}]")
        self.matrix += torch.bincount(target * k + pred, minlength=k * k).view(k, k)

    def iou(self) -> Tensor:
        """Per-class intersection over union (NaN for classes absent from both)."""
        m = self.matrix.double()
        tp = m.diag()
        union = m.sum(0) + m.sum(1) - tp
        return tp / union

    def accuracy(self) -> float:
        """Share of correctly classified pixels."""
        return float(self.matrix.diag().sum() / self.matrix.sum().clamp_min(1))

    def summary_iou(self) -> float:
        """The headline IoU: the foreground IoU for binary tasks, mean IoU otherwise."""
        iou = self.iou()
        if self.num_classes == 2:
            return float(torch.nan_to_num(iou[1], nan=0.0))
        return float(torch.nanmean(iou))

    def scores(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """All pixel-level scores as a JSON-serialisable dict.

        Per class (keyed by its name; default ``"0"``, ``"1"``, ...) a dict with ``iou``
        ``tp / (tp + fp + fn)``, ``dice`` ``2 tp / (2 tp + fp + fn)`` (= F1), ``precision``
        ``tp / (tp + fp)``, ``recall`` ``tp / (tp + fn)`` and ``support`` (true pixel count).
        A class present in the truth or the prediction gets 0 for a 0/0 ratio (e.g. precision
        of a class never predicted); a class absent from both gets ``None`` for all four
        scores (no evidence either way).

        ``macro_*`` is the mean over the classes present in truth or prediction (those not
        ``None``), matching torchmetrics' ``average="macro"``. ``micro_*`` is computed from
        TP / FP / FN summed over classes; for single-label multi-class data every wrong pixel
        is one FP and one FN, so ``micro_precision == micro_recall == micro_dice ==
        pixel_accuracy`` and ``micro_iou == acc / (2 - acc)``. ``pixel_accuracy`` is trace /
        total. Averages are ``None`` when the matrix is empty. ``confusion_matrix`` is the
        matrix as a list of lists of ints, rows = truth, columns = prediction.

        Args:
            class_names: One name per class.

        Raises:
            ValueError: If the names are the wrong number, repeat, or clash with a summary key.
        """
        k = self.num_classes
        names = [str(i) for i in range(k)] if class_names is None else [str(n) for n in class_names]
        if len(names) != k:
            raise ValueError(f"expected {k} class names, got {len(names)}")
        if len(set(names)) != k or _RESERVED_KEYS & set(names):
            raise ValueError(f"class names must be unique and not in {sorted(_RESERVED_KEYS)}")

        m = self.matrix.numpy().astype(np.float64)
        tp = np.diag(m)
        fp = m.sum(0) - tp
        fn = m.sum(1) - tp
        present = (tp + fp + fn) > 0
        per_class = {
            "iou": _ratio(tp, tp + fp + fn),
            "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
        }
        for values in per_class.values():
            values[~present] = np.nan

        out: dict[str, Any] = {}
        support = self.matrix.sum(1).tolist()
        for i, name in enumerate(names):
            out[name] = {key: _maybe(values[i]) for key, values in per_class.items()}
            out[name]["support"] = int(support[i])
        for key, values in per_class.items():
            out[f"macro_{key}"] = _maybe(values[present].mean()) if present.any() else None
        stp, sfp, sfn = tp.sum(), fp.sum(), fn.sum()
        total = m.sum()
        micro = {
            "iou": (stp, stp + sfp + sfn),
            "dice": (2 * stp, 2 * stp + sfp + sfn),
            "precision": (stp, stp + sfp),
            "recall": (stp, stp + sfn),
        }
        for key, (num, den) in micro.items():
            out[f"micro_{key}"] = float(num / den) if den > 0 else None
        out["pixel_accuracy"] = float(stp / total) if total > 0 else None
        out["confusion_matrix"] = self.matrix.tolist()
        return out


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a face-neighbour outside the mask (or on the array's edge)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def hausdorff_distance(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    spacing: Sequence[float] = (1.0, 1.0),
    percentile: float = 100.0,
) -> float:
    """Symmetric (percentile) Hausdorff distance between the boundaries of two masks.

    The boundary of a mask is its pixels with a 4-neighbour (face neighbour) outside the mask;
    pixels on the array's edge count as boundary. For every boundary pixel of each mask the
    Euclidean distance to the nearest boundary pixel of the other is taken (pixel centres,
    ``scipy.ndimage.distance_transform_edt`` with ``sampling=spacing``), and the result is
    the ``percentile`` of the union of both directed distance sets, as in medpy's ``hd95``.
    ``percentile=100`` is the classic Hausdorff distance (the max of the two directed ones);
    ``percentile=95`` is HD95. (MONAI instead takes the max of the two directed percentiles;
    that equals this for ``percentile=100``.)

    Args:
        pred: Boolean (or 0/1) predicted mask.
        truth: Boolean (or 0/1) true mask of the same shape.
        spacing: Pixel size per axis, (row, col), e.g. ``(0.3, 0.3)`` for 30 cm pixels; the
            default gives distances in pixels.
        percentile: In ``[0, 100]``.

    Returns:
        The distance, 0.0 if both masks are empty and ``inf`` if exactly one is.
    """
    pred = np.asarray(pred).astype(bool)
    truth = np.asarray(truth).astype(bool)
    if pred.shape != truth.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {truth.shape}")
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing needs {pred.ndim} values, got {len(spacing)}")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile}")
    has_pred, has_truth = pred.any(), truth.any()
    if not has_pred and not has_truth:
        return 0.0
    if not has_pred or not has_truth:
        return float("inf")

    # Crop to the union's bounding box plus a 1-pixel margin (kept inside the array so that
    # the edge rule is unchanged): every boundary pixel lies inside, so distances are exact.
    (bbox,) = ndimage.find_objects((pred | truth).astype(np.uint8))
    crop = tuple(
        slice(max(box.start - 1, 0), min(box.stop + 1, size))
        for box, size in zip(bbox, pred.shape, strict=True)
    )
    edge_pred, edge_truth = _boundary(pred[crop]), _boundary(truth[crop])

    sampling = tuple(float(s) for s in spacing)
    to_truth = ndimage.distance_transform_edt(~edge_truth, sampling=sampling)[edge_pred]
    to_pred = ndimage.distance_transform_edt(~edge_pred, sampling=sampling)[edge_truth]
    distances = np.concatenate([to_truth, to_pred])
    if percentile >= 100.0:
        return float(distances.max())
    return float(np.percentile(distances, percentile))


def hausdorff_per_class(
    pred_classes: np.ndarray,
    true_classes: np.ndarray,
    classes: Iterable[int],
    spacing: Sequence[float] = (1.0, 1.0),
    percentile: float = 100.0,
) -> dict[int, float]:
    """:func:`hausdorff_distance` of ``pred == c`` vs ``truth == c`` for each class ``c``.

    Args:
        pred_classes: Predicted class-id map.
        true_classes: True class-id map of the same shape.
        classes: Class ids to score.
        spacing: Pixel size per axis.
        percentile: Percentile of the boundary distances (95 for HD95).

    Returns:
        Class id -> distance (0.0 if the class is absent from both, ``inf`` if from one).
    """
    pred_classes = np.asarray(pred_classes)
    true_classes = np.asarray(true_classes)
    return {
        int(c): hausdorff_distance(
            pred_classes == c, true_classes == c, spacing=spacing, percentile=percentile
        )
        for c in classes
    }


def _pair_overlaps(
    pred_labels: np.ndarray, true_labels: np.ndarray, n_pred: int, n_true: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pred label, true label, overlap pixel count) for every overlapping pair of objects."""
    both = (pred_labels > 0) & (true_labels > 0)
    key = pred_labels[both].astype(np.int64) * (n_true + 1) + true_labels[both]
    if (n_pred + 1) * (n_true + 1) <= _DENSE_PAIR_LIMIT:
        counts = np.bincount(key, minlength=(n_pred + 1) * (n_true + 1))
        key = np.flatnonzero(counts)
        counts = counts[key]
    else:  # too many pairs for a dense table: count the (few) occurring keys
        key, counts = np.unique(key, return_counts=True)
    return key // (n_true + 1), key % (n_true + 1), counts


def object_f1(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    iou_threshold: float = 0.5,
    connectivity: int = 1,
) -> dict[str, float]:
    """Object-level precision / recall / F1 of connected components (SpaceNet-style).

    Objects are the connected components of each boolean mask (``connectivity`` 1 = 4-, 2 =
    8-neighbour in 2D). A predicted and a true object match when their IoU is
    ``>= iou_threshold``; matching is one-to-one, greedy by descending IoU (for thresholds
    ``>= 0.5`` every object has at most one candidate anyway). Overlaps of all pairs come from
    one bincount of ``pred_label * (n_true + 1) + true_label``, so the cost is a few passes
    over the pixels.

    Args:
        pred: Boolean (or 0/1) predicted mask.
        truth: Boolean (or 0/1) true mask of the same shape.
        iou_threshold: Minimum IoU for a match, in ``(0, 1]``.
        connectivity: Neighbourhood of the components, 1 to ``ndim``.

    Returns:
        ``tp``, ``fp``, ``fn``, ``n_pred``, ``n_true`` (ints) and ``precision = tp / n_pred``,
        ``recall = tp / n_true``, ``f1`` (their harmonic mean). A 0/0 ratio is 0, except that
        all three are 1.0 when both masks have no objects.
    """
    pred = np.asarray(pred).astype(bool)
    truth = np.asarray(truth).astype(bool)
    if pred.shape != truth.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {truth.shape}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold}")
    structure = ndimage.generate_binary_structure(pred.ndim, connectivity)
    pred_labels, n_pred = ndimage.label(pred, structure=structure)
    true_labels, n_true = ndimage.label(truth, structure=structure)

    tp = 0
    if n_pred and n_true:
        pred_area = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)
        true_area = np.bincount(true_labels.ravel(), minlength=n_true + 1)
        p, t, inter = _pair_overlaps(pred_labels, true_labels, n_pred, n_true)
        iou = inter / (pred_area[p] + true_area[t] - inter)
        hit = iou >= iou_threshold
        p, t, iou = p[hit], t[hit], iou[hit]
        if iou_threshold > 0.5:  # IoU > 0.5 with two disjoint objects is impossible
            tp = len(iou)
        else:
            order = np.lexsort((t, p, -iou))  # descending IoU, ties by label
            used_pred = np.zeros(n_pred + 1, dtype=bool)
            used_true = np.zeros(n_true + 1, dtype=bool)
            for i, j in zip(p[order].tolist(), t[order].tolist(), strict=True):
                if not used_pred[i] and not used_true[j]:
                    used_pred[i] = used_true[j] = True
                    tp += 1

    fp, fn = n_pred - tp, n_true - tp
    if n_pred == 0 and n_true == 0:
        precision = recall = f1 = 1.0
    else:
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_pred": int(n_pred),
        "n_true": int(n_true),
    }


def foreground_scores(confusion: np.ndarray | Sequence[Sequence[int]]) -> dict[str, float | None]:
    """IoU and F1 of any class but 0 against class 0 (background) of a confusion matrix
    (rows truth, columns prediction): roads, buildings, fields whatever their class.
    ``None`` when neither truth nor prediction has any."""
    m = np.asarray(confusion, dtype=np.float64)
    tp, fn, fp = m[1:, 1:].sum(), m[1:, 0].sum(), m[0, 1:].sum()
    if tp + fp + fn == 0:
        return {"iou": None, "f1": None}
    return {"iou": float(tp / (tp + fp + fn)), "f1": float(2 * tp / (2 * tp + fp + fn))}


def xview2_scores(confusion: np.ndarray | Sequence[Sequence[int]]) -> dict[str, Any]:
    """The xView2 challenge score of a damage confusion matrix.

    Classes are background (0) and four damage grades (1-4: no, minor, major damage,
    destroyed); rows are truth, columns prediction, over the scored pixels.

    - Localisation F1: building (any grade) against background, pixel by pixel.
    - Damage F1: on the pixels of true buildings only, the F1 of each grade (a building
      pixel predicted as background is a miss of its grade); their harmonic mean (with
      the official 1e-6 added to each F1).
    - Score: ``0.3 * localisation + 0.7 * damage``.

    A grade absent from both truth and prediction has no F1 (``None`` in the list) and
    counts as 0 in the official damage F1, which then is about 0; ``*_present_grades``
    give the damage F1 and score over the grades that are there.

    Returns:
        ``score``, ``localization_f1``, ``damage_f1``, ``damage_f1_per_class`` (list)
        and ``damage_f1_present_grades`` / ``score_present_grades``.
    """
    m = np.asarray(confusion, dtype=np.float64)
    if m.shape != (5, 5):
        raise ValueError(f"the xView2 score needs a 5x5 confusion matrix, got {m.shape}")
    loc = foreground_scores(m)["f1"] or 0.0
    buildings = m[1:]  # true building pixels: rows 1-4, every predicted column
    f1s: list[float | None] = []
    for c in range(1, 5):
        hit = buildings[c - 1, c]
        wrong = buildings[:, c].sum() - hit  # predicted c on a building of another grade
        missed = buildings[c - 1].sum() - hit  # a building of grade c predicted otherwise
        f1s.append(float(2 * hit / (2 * hit + wrong + missed)) if hit + wrong + missed else None)
    # officially an absent grade scores 0 (and the harmonic mean ~0); beside it, the mean
    # over the grades present in truth or prediction, for small areas missing a grade
    damage = 4 / sum(1.0 / ((f or 0.0) + 1e-6) for f in f1s)
    present = [f for f in f1s if f is not None]
    damage_present = len(present) / sum(1.0 / (f + 1e-6) for f in present) if present else None
    return {
        "score": 0.3 * loc + 0.7 * damage,
        "localization_f1": float(loc),
        "damage_f1": float(damage),
        "damage_f1_per_class": f1s,
        "damage_f1_present_grades": damage_present,
        "score_present_grades": None
        if damage_present is None
        else 0.3 * loc + 0.7 * damage_present,
    }
