"""Tests for the segmentation metrics, checked against independent implementations."""

import json
import math
import time

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.spatial.distance import cdist, directed_hausdorff
from torchmetrics.functional.classification import (
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_jaccard_index,
    multiclass_precision,
    multiclass_recall,
)

from geounet.train import metrics
from geounet.train.metrics import (
    ConfusionMatrix,
    hausdorff_distance,
    hausdorff_per_class,
    object_f1,
    predicted_classes,
)

# --------------------------------------------------------------------------------------------
# Confusion matrix: the original API


def test_confusion_matrix_and_iou_by_hand() -> None:
    truth = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 1, 0]])
    cm = ConfusionMatrix(3)
    cm.update(pred, truth)
    # rows = truth, columns = prediction
    expected = torch.tensor([[2, 1, 0], [0, 2, 0], [1, 1, 1]])
    assert torch.equal(cm.matrix, expected)
    # IoU_k = tp / (row + col - tp)
    iou = cm.iou()
    assert iou[0].item() == pytest.approx(2 / (3 + 3 - 2))
    assert iou[1].item() == pytest.approx(2 / (2 + 4 - 2))
    assert iou[2].item() == pytest.approx(1 / (3 + 1 - 1))
    assert cm.accuracy() == pytest.approx(5 / 8)
    assert cm.summary_iou() == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)


def test_update_accumulates() -> None:
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([1, 0]), torch.tensor([1, 1]))
    cm.update(torch.tensor([[1]]), torch.tensor([[0]]))
    assert torch.equal(cm.matrix, torch.tensor([[0, 1], [1, 1]]))


def test_binary_summary_is_foreground_iou() -> None:
    truth = torch.tensor([0, 0, 0, 0, 1, 1, 1, 0])
    pred = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0])
    cm = ConfusionMatrix(2)
    cm.update(pred, truth)
    # foreground: tp 2, fp 1, fn 1 -> 2/4; background: tp 4, union 6 -> 4/6
    assert cm.summary_iou() == pytest.approx(0.5)
    assert cm.iou()[0].item() == pytest.approx(4 / 6)


def test_absent_classes() -> None:
    cm = ConfusionMatrix(2)
    cm.update(torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    assert math.isnan(cm.iou()[1].item())
    assert cm.summary_iou() == 0.0  # no foreground anywhere: 0, not NaN
    cm3 = ConfusionMatrix(3)
    cm3.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert cm3.summary_iou() == pytest.approx(1.0)  # absent class 2 ignored by nanmean


def test_predicted_classes() -> None:
    binary = torch.tensor([[[[-0.1, 0.0, 2.0]]]])
    assert predicted_classes(binary).tolist() == [[[0, 0, 1]]]
    multi = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]], [[0.5, 3.0]]]])
    assert predicted_classes(multi).tolist() == [[[0, 2]]]


# --------------------------------------------------------------------------------------------
# Confusion matrix: ignore_index and scores()


def test_update_ignore_index_and_validation() -> None:
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([1, 0, 1, 0]), torch.tensor([1, 255, 255, 0]), ignore_index=255)
    assert torch.equal(cm.matrix, torch.tensor([[1, 0], [0, 1]]))
    cm.update(torch.tensor([1]), torch.tensor([255]), ignore_index=255)  # all ignored: no-op
    assert int(cm.matrix.sum()) == 2
    with pytest.raises(ValueError, match="class ids"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0, 255]))  # 255 not ignored
    with pytest.raises(ValueError, match="class ids"):
        cm.update(torch.tensor([2]), torch.tensor([0]))
    with pytest.raises(ValueError, match="elements"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0]))


def test_scores_binary_by_hand() -> None:
    # truth/pred pixels: TN=4, FP=1, FN=1, TP=2 -> matrix [[4, 1], [1, 2]]
    truth = torch.tensor([0, 0, 0, 0, 1, 1, 1, 0])
    pred = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0])
    cm = ConfusionMatrix(2)
    cm.update(pred, truth)
    s = cm.scores(["background", "building"])
    assert s["confusion_matrix"] == [[4, 1], [1, 2]]
    assert s["building"] == pytest.approx(
        {"iou": 2 / 4, "dice": 4 / 6, "precision": 2 / 3, "recall": 2 / 3, "support": 3}
    )
    assert s["background"] == pytest.approx(
        {"iou": 4 / 6, "dice": 8 / 10, "precision": 4 / 5, "recall": 4 / 5, "support": 5}
    )
    assert s["macro_iou"] == pytest.approx((2 / 4 + 4 / 6) / 2)
    assert s["macro_dice"] == pytest.approx((4 / 6 + 8 / 10) / 2)
    assert s["pixel_accuracy"] == pytest.approx(6 / 8)
    # micro: TP 6, FP 2, FN 2
    assert s["micro_iou"] == pytest.approx(6 / 10)
    for key in ("micro_dice", "micro_precision", "micro_recall"):
        assert s[key] == pytest.approx(6 / 8)
    assert isinstance(s["building"]["support"], int)


def test_scores_absent_class_is_null_and_json_safe() -> None:
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]))
    s = cm.scores()
    assert s["2"] == {"iou": None, "dice": None, "precision": None, "recall": None, "support": 0}
    assert s["macro_iou"] == pytest.approx((1 / 2 + 1 / 2) / 2)  # class 2 left out
    json.dumps(s, allow_nan=False)  # strict JSON: no NaN / inf anywhere

    cm_pred_only = ConfusionMatrix(2)
    cm_pred_only.update(torch.tensor([1, 0]), torch.tensor([0, 0]))
    s = cm_pred_only.scores()
    # class 1 predicted but never true: present, so 0/0 recall counts as 0
    assert s["1"] == {"iou": 0.0, "dice": 0.0, "precision": 0.0, "recall": 0.0, "support": 0}

    empty = ConfusionMatrix(2).scores()
    assert empty["macro_iou"] is None and empty["micro_iou"] is None
    assert empty["pixel_accuracy"] is None
    json.dumps(empty, allow_nan=False)


def test_scores_rejects_bad_names() -> None:
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError):
        cm.scores(["only one"])
    with pytest.raises(ValueError):
        cm.scores(["a", "a"])
    with pytest.raises(ValueError):
        cm.scores(["a", "macro_iou"])


def _random_batch(seed: int, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlated random predictions (70% correct) with unequal class frequencies."""
    gen = torch.Generator().manual_seed(seed)
    truth = torch.multinomial(
        torch.tensor([0.5, 0.3, 0.15, 0.05]), 3 * 40 * 40, True, generator=gen
    )
    truth = truth.view(3, 40, 40)
    noise = torch.randint(0, k, truth.shape, generator=gen)
    pred = torch.where(torch.rand(truth.shape, generator=gen) < 0.7, truth, noise)
    return pred, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_torchmetrics(seed: int) -> None:
    k = 4
    pred, truth = _random_batch(seed)
    cm = ConfusionMatrix(k)
    for i in range(pred.shape[0]):  # accumulate over "batches"
        cm.update(pred[i], truth[i])
    s = cm.scores()
    kw = {"num_classes": k}
    assert s["confusion_matrix"] == multiclass_confusion_matrix(pred, truth, **kw).tolist()
    per_class = {
        "iou": multiclass_jaccard_index(pred, truth, average=None, **kw),
        "dice": multiclass_f1_score(pred, truth, average=None, **kw),
        "precision": multiclass_precision(pred, truth, average=None, **kw),
        "recall": multiclass_recall(pred, truth, average=None, **kw),
    }
    funcs = {
        "iou": multiclass_jaccard_index,
        "dice": multiclass_f1_score,
        "precision": multiclass_precision,
        "recall": multiclass_recall,
    }
    for key, fn in funcs.items():
        got = [s[str(c)][key] for c in range(k)]
        assert got == pytest.approx(per_class[key].tolist(), abs=1e-6)
        for average in ("macro", "micro"):
            expected = float(fn(pred, truth, average=average, **kw))
            assert s[f"{average}_{key}"] == pytest.approx(expected, abs=1e-6)
    assert s["pixel_accuracy"] == pytest.approx(float((pred == truth).float().mean()))
    assert [s[str(c)]["support"] for c in range(k)] == torch.bincount(truth.flatten()).tolist()


def test_scores_ignore_index_matches_torchmetrics() -> None:
    k = 4
    pred, truth = _random_batch(7)
    gen = torch.Generator().manual_seed(8)
    truth = truth.clone()
    truth[torch.rand(truth.shape, generator=gen) < 0.2] = 255
    cm = ConfusionMatrix(k)
    cm.update(pred, truth, ignore_index=255)
    s = cm.scores()
    kw = {"num_classes": k, "ignore_index": 255}
    assert s["confusion_matrix"] == multiclass_confusion_matrix(pred, truth, **kw).tolist()
    funcs = {
        "iou": multiclass_jaccard_index,
        "dice": multiclass_f1_score,
        "precision": multiclass_precision,
        "recall": multiclass_recall,
    }
    for key, fn in funcs.items():
        for average in ("macro", "micro"):
            expected = float(fn(pred, truth, average=average, **kw))
            assert s[f"{average}_{key}"] == pytest.approx(expected, abs=1e-6)
        per_class = fn(pred, truth, average=None, **kw).tolist()
        assert [s[str(c)][key] for c in range(k)] == pytest.approx(per_class, abs=1e-6)


def test_macro_skips_absent_class_like_torchmetrics() -> None:
    k = 4
    pred, truth = _random_batch(3)
    pred[pred == 3] = 0  # class 3 now never predicted ...
    truth[truth == 3] = 0  # ... and never true
    cm = ConfusionMatrix(k)
    cm.update(pred, truth)
    s = cm.scores()
    assert s["3"]["iou"] is None
    for key, fn in (("iou", multiclass_jaccard_index), ("dice", multiclass_f1_score)):
        expected = float(fn(pred, truth, num_classes=k, average="macro"))
        assert s[f"macro_{key}"] == pytest.approx(expected, abs=1e-6)


# --------------------------------------------------------------------------------------------
# Hausdorff distance


def _boundary_points(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (outside the array counts)."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return np.argwhere(mask & ~inner).astype(float)


def _random_blobs(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 3.0)
    return noise > 0.05


def _square(shape: tuple[int, int], r0: int, c0: int, size: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[r0 : r0 + size, c0 : c0 + size] = True
    return mask


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.3, 0.7)])
def test_hausdorff_matches_scipy(seed: int, spacing: tuple[float, float]) -> None:
    rng = np.random.default_rng(seed)
    a, b = _random_blobs(rng, (48, 56)), _random_blobs(rng, (48, 56))
    pa, pb = _boundary_points(a) * spacing, _boundary_points(b) * spacing
    expected = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
    assert hausdorff_distance(a, b, spacing=spacing) == pytest.approx(expected)
    # percentile over the union of both directed distance sets (medpy's hd95)
    d = cdist(pa, pb)
    pooled = np.concatenate([d.min(1), d.min(0)])
    hd95 = hausdorff_distance(a, b, spacing=spacing, percentile=95)
    assert hd95 == pytest.approx(np.percentile(pooled, 95))
    assert hd95 <= hausdorff_distance(a, b, spacing=spacing) + 1e-12


def test_hausdorff_squares_by_hand() -> None:
    shape = (30, 30)
    a = _square(shape, 5, 5, 10)
    assert hausdorff_distance(a, _square(shape, 5, 8, 10)) == pytest.approx(3.0)
    assert hausdorff_distance(a, a) == 0.0
    # isotropic spacing just scales
    shifted = _square(shape, 5, 8, 10)
    assert hausdorff_distance(a, shifted, spacing=(0.3, 0.3)) == pytest.approx(0.9)
    # anisotropic: shift 2 rows. Row steps cost 0.5 -> 1.0; with 2.0 per row the top edge
    # of one square is 2 rows = 4.0 from the other's nearest boundary pixel.
    down = _square(shape, 7, 5, 10)
    assert hausdorff_distance(a, down, spacing=(0.5, 2.0)) == pytest.approx(1.0)
    assert hausdorff_distance(a, down, spacing=(2.0, 0.5)) == pytest.approx(4.0)


def test_hausdorff_edge_of_array_counts_as_boundary() -> None:
    full = np.ones((10, 10), dtype=bool)
    inner = np.zeros((10, 10), dtype=bool)
    inner[1:9, 1:9] = True
    # the full mask's boundary is the array's outer ring; its corners are sqrt(2) from the
    # inner ring (the other boundary pixels 1)
    assert hausdorff_distance(full, inner) == pytest.approx(math.sqrt(2))


def test_hausdorff_empty_masks() -> None:
    empty = np.zeros((8, 8), dtype=bool)
    some = _square((8, 8), 2, 2, 3)
    assert hausdorff_distance(empty, empty) == 0.0
    assert hausdorff_distance(empty, some) == math.inf
    assert hausdorff_distance(some, empty, percentile=95) == math.inf
    with pytest.raises(ValueError):
        hausdorff_distance(some, some, spacing=(1.0,))
    with pytest.raises(ValueError):
        hausdorff_distance(some, some, percentile=101)


def test_hausdorff_per_class() -> None:
    shape = (30, 30)
    truth = _square(shape, 5, 5, 10).astype(np.int64)
    pred = _square(shape, 5, 8, 10).astype(np.int64)
    truth[20:25, 20:25] = 2
    out = hausdorff_per_class(pred, truth, classes=[1, 2, 3], spacing=(0.5, 0.5))
    assert out == {1: pytest.approx(1.5), 2: math.inf, 3: 0.0}
    # class 0 (background) goes through the same code path
    assert hausdorff_per_class(pred, truth, [0])[0] == pytest.approx(
        hausdorff_distance(pred == 0, truth == 0)
    )


# --------------------------------------------------------------------------------------------
# Object F1


def _brute_force_object_matches(
    pred: np.ndarray, truth: np.ndarray, threshold: float, connectivity: int
) -> tuple[int, int, int]:
    """Per-object loops: pairwise IoU from masks, greedy one-to-one by descending IoU."""
    structure = ndimage.generate_binary_structure(2, connectivity)
    pl, n_pred = ndimage.label(pred, structure)
    tl, n_true = ndimage.label(truth, structure)
    pairs = []
    for i in range(1, n_pred + 1):
        for j in range(1, n_true + 1):
            a, b = pl == i, tl == j
            iou = (a & b).sum() / (a | b).sum()
            if iou >= threshold:
                pairs.append((-iou, i, j))
    used_p, used_t, tp = set(), set(), 0
    for _, i, j in sorted(pairs):
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            tp += 1
    return tp, n_pred, n_true


def test_object_f1_by_hand() -> None:
    shape = (50, 50)
    truth = _square(shape, 0, 0, 10) | _square(shape, 20, 20, 10)
    good = _square(shape, 0, 1, 10)  # IoU 90 / 110 with the first building
    partial = np.zeros(shape, dtype=bool)
    partial[20:30, 20:23] = True  # 30 px inside the second building: IoU 0.3
    false_positive = _square(shape, 40, 40, 5)
    out = object_f1(good | partial | false_positive, truth)
    assert out == {
        "tp": 1,
        "fp": 2,
        "fn": 1,
        "precision": pytest.approx(1 / 3),
        "recall": pytest.approx(1 / 2),
        "f1": pytest.approx(0.4),
        "n_pred": 3,
        "n_true": 2,
    }
    # lowering the threshold to 0.3 lets the partial prediction count too
    assert object_f1(good | partial | false_positive, truth, iou_threshold=0.3)["tp"] == 2


def test_object_f1_touching_objects() -> None:
    shape = (40, 40)
    # two buildings 1 px apart, predicted as one merged blob: IoU 100/210 with each
    truth = _square(shape, 5, 5, 10) | _square(shape, 5, 16, 10)
    merged = np.zeros(shape, dtype=bool)
    merged[5:15, 5:26] = True
    out = object_f1(merged, truth)
    assert (out["tp"], out["fp"], out["fn"]) == (0, 1, 2)
    assert out["f1"] == 0.0
    # squares touching only at a corner: 2 objects with 4-connectivity, 1 with 8
    diag = _square(shape, 0, 0, 5) | _square(shape, 5, 5, 5)
    four = object_f1(diag, diag, connectivity=1)
    eight = object_f1(diag, diag, connectivity=2)
    assert (four["n_true"], four["tp"], four["f1"]) == (2, 2, 1.0)
    assert (eight["n_true"], eight["tp"], eight["f1"]) == (1, 1, 1.0)


def test_object_f1_threshold_exactly_half() -> None:
    shape = (10, 10)
    truth = _square(shape, 2, 2, 4)  # 16 px
    pred = np.zeros(shape, dtype=bool)
    pred[2:6, 2:4] = True  # 8 px inside: IoU exactly 0.5
    assert object_f1(pred, truth, iou_threshold=0.5)["tp"] == 1
    assert object_f1(pred, truth, iou_threshold=0.5 + 1e-9)["tp"] == 0


def test_object_f1_empty() -> None:
    empty = np.zeros((8, 8), dtype=bool)
    some = _square((8, 8), 2, 2, 3)
    assert object_f1(empty, empty) == {
        "tp": 0, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0,
        "n_pred": 0, "n_true": 0,
    }  # fmt: skip
    only_truth = object_f1(empty, some)
    assert (only_truth["fn"], only_truth["precision"], only_truth["f1"]) == (1, 0.0, 0.0)
    only_pred = object_f1(some, empty)
    assert (only_pred["fp"], only_pred["recall"], only_pred["f1"]) == (1, 0.0, 0.0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("connectivity", [1, 2])
def test_object_f1_matches_brute_force(seed: int, threshold: float, connectivity: int) -> None:
    rng = np.random.default_rng(seed)
    truth = ndimage.gaussian_filter(rng.standard_normal((48, 48)), 1.5) > 0.3
    pred = ndimage.binary_dilation(truth) if seed % 2 else truth.copy()
    pred ^= ndimage.gaussian_filter(rng.standard_normal((48, 48)), 1.0) > 0.5
    tp, n_pred, n_true = _brute_force_object_matches(pred, truth, threshold, connectivity)
    out = object_f1(pred, truth, iou_threshold=threshold, connectivity=connectivity)
    assert (out["tp"], out["n_pred"], out["n_true"]) == (tp, n_pred, n_true)
    assert (out["fp"], out["fn"]) == (n_pred - tp, n_true - tp)
    p, r = tp / n_pred, tp / n_true
    assert out["f1"] == pytest.approx(2 * p * r / (p + r) if tp else 0.0)


def test_object_f1_sparse_overlap_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many objects switch from a dense bincount table to np.unique: same answers."""
    rng = np.random.default_rng(5)
    truth = ndimage.gaussian_filter(rng.standard_normal((64, 64)), 1.5) > 0.3
    pred = ndimage.binary_dilation(truth) ^ (rng.random((64, 64)) > 0.9)
    dense = [object_f1(pred, truth, iou_threshold=t) for t in (0.2, 0.5)]
    monkeypatch.setattr(metrics, "_DENSE_PAIR_LIMIT", 0)
    assert [object_f1(pred, truth, iou_threshold=t) for t in (0.2, 0.5)] == dense


def test_object_f1_many_buildings_is_fast() -> None:
    rng = np.random.default_rng(0)
    shape = (2048, 2048)
    truth = np.zeros(shape, dtype=bool)
    pitch = 45  # 45 x 45 = 2025 squares, separated by at least 15 px
    for r in range(0, shape[0] - pitch + 1, pitch):
        for c in range(0, shape[1] - pitch + 1, pitch):
            size = int(rng.integers(5, 31))
            truth[r : r + size, c : c + size] = True
    start = time.perf_counter()
    out = object_f1(truth, truth)
    shifted = object_f1(np.roll(truth, 1, axis=1), truth)  # 1 px off: IoU >= 4/6 each
    elapsed = time.perf_counter() - start
    assert out["n_true"] == out["n_pred"] == out["tp"] == 45 * 45
    assert out["f1"] == 1.0
    assert shifted["tp"] == 45 * 45
    assert elapsed < 10.0  # generous: ~0.2 s on a laptop


def test_xview2_score_against_a_hand_computed_case() -> None:
    from geounet.train.metrics import xview2_scores

    # rows: truth (background, no, minor, major damage, destroyed); columns: prediction
    m = [
        [90, 5, 0, 0, 5],
        [2, 8, 0, 0, 0],
        [0, 2, 6, 2, 0],
        [1, 0, 1, 7, 1],
        [0, 0, 0, 1, 9],
    ]
    x = xview2_scores(m)
    # localisation: TP 37 building pixels predicted building, FN 3, FP 10
    assert x["localization_f1"] == pytest.approx(74 / 87)
    # damage on true building pixels: no 16/20, minor 12/17, major 14/20, destroyed 18/20
    per_class = [16 / 20, 12 / 17, 14 / 20, 18 / 20]
    assert x["damage_f1_per_class"] == pytest.approx(per_class)
    harmonic = 4 / sum(1 / (f + 1e-6) for f in per_class)
    assert x["damage_f1"] == pytest.approx(harmonic)
    assert x["damage_f1"] == pytest.approx(0.76829, abs=1e-4)
    assert x["score"] == pytest.approx(0.3 * 74 / 87 + 0.7 * harmonic)
    perfect = xview2_scores(np.diag([50, 5, 5, 5, 5]))
    assert perfect["score"] == pytest.approx(1.0, abs=1e-5)
    # a grade neither present nor predicted scores 0 officially (harmonic mean ~0); the
    # grades present score apart
    absent = xview2_scores(np.diag([50, 5, 5, 5, 0]))
    assert absent["damage_f1"] < 1e-4 and absent["damage_f1_per_class"][3] is None
    assert absent["damage_f1_present_grades"] == pytest.approx(1.0, abs=1e-5)
    assert absent["score_present_grades"] == pytest.approx(1.0, abs=1e-5)
