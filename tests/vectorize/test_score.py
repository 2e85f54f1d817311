"""SpaceNet-style polygon scores against a hand-computed case."""

from __future__ import annotations

import pytest
import shapely

from geounet.vectorize.score import score_polygons

box = shapely.box


def test_hand_computed_case():
    truth = [
        box(0, 0, 10, 10),  # A } touching roofs, predicted as one polygon: a merge
        box(10, 0, 20, 10),  # B }
        box(30, 0, 40, 10),  # C: matched at IoU 0.9
        box(50, 0, 51, 1),  # D: 1 unit², dropped by min_area
        box(80, 0, 100, 10),  # E: predicted as two pieces, a split
    ]
    pred = [
        box(0, 0, 20, 10),  # IoU 0.5 with A and with B: not > 0.5, no match
        box(31, 0, 40, 10),
        box(60, 0, 70, 10),  # nothing there
        box(80, 0, 89, 10),  # IoU 0.45 with E
        box(91, 0, 100, 10),
    ]
    s = score_polygons(pred, truth, min_area=5)
    assert (s.n_true, s.n_pred, s.tp, s.fp, s.fn) == (4, 5, 1, 4, 3)
    assert s.precision == pytest.approx(0.2) and s.recall == pytest.approx(0.25)
    assert s.f1 == pytest.approx(2 * 0.2 * 0.25 / 0.45)
    assert s.mean_iou == pytest.approx(0.9)
    assert (s.merges, s.merged_true, s.splits, s.split_pieces) == (1, 2, 1, 2)


def test_one_to_one_matching_and_empty_sets():
    truth = [box(0, 0, 10, 10)]
    pred = [box(0, 0, 10, 10), box(0, 0, 10, 9.5)]  # two candidates, one match
    s = score_polygons(pred, truth)
    assert (s.tp, s.fp, s.fn) == (1, 1, 0)
    empty = score_polygons([], [])
    assert empty.f1 == 1.0 and empty.precision == 1.0
    none_found = score_polygons([], truth)
    assert none_found.recall == 0.0 and none_found.f1 == 0.0
    with pytest.raises(ValueError, match="iou_threshold"):
        score_polygons(pred, truth, iou_threshold=1.0)


def test_matched_flags_follow_the_matching() -> None:
    from geounet.vectorize.score import matched_flags

    truth = [box(0, 0, 10, 10), box(20, 0, 30, 10)]
    pred = [box(0, 0, 10, 9), box(20, 0, 22, 10), box(50, 0, 60, 10)]
    hit_p, hit_t = matched_flags(pred, truth)
    assert hit_p.tolist() == [True, False, False] and hit_t.tolist() == [True, False]
