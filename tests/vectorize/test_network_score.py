"""Tests for geounet.vectorize.network_score: completeness / correctness and APLS."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import LineString

from geounet.vectorize.network import lines_graph
from geounet.vectorize.network_score import (
    RoadScores,
    apls,
    buffer_counts,
    buffer_scores,
    densify,
)


def test_identical_graphs_score_one() -> None:
    truth = lines_graph(
        [
            LineString([(0, 0), (100, 0)]),
            LineString([(100, 0), (200, 0)]),
            LineString([(100, 0), (100, 120)]),
        ]
    )
    assert apls(truth, truth.copy())["apls"] == pytest.approx(1.0)
    assert apls(truth, truth.copy(), spacing=None)["apls"] == pytest.approx(1.0)


def test_direction_of_the_lines_does_not_matter() -> None:
    forward = lines_graph([LineString([(0, 0), (120, 0)]), LineString([(120, 0), (120, 90)])])
    backward = lines_graph([LineString([(120, 0), (0, 0)]), LineString([(120, 90), (120, 0)])])
    assert apls(forward, backward, spacing=25.0)["apls"] == pytest.approx(1.0)


def test_cut_road_lowers_apls_by_the_hand_computed_amount() -> None:
    # truth A(0)-B(100)-C(200); the proposal misses 100..110
    truth = lines_graph([LineString([(0, 0), (100, 0)]), LineString([(100, 0), (200, 0)])])
    cut = lines_graph([LineString([(0, 0), (100, 0)]), LineString([(110, 0), (200, 0)])])
    scores = apls(truth, cut, spacing=None)
    # truth -> proposal: pairs AB ok, AC and BC have no path: 1 - 2/3
    assert scores["apls_gt_to_prop"] == pytest.approx(1 / 3)
    # proposal -> truth: its two pieces are exact where joined: 1
    assert scores["apls_prop_to_gt"] == pytest.approx(1.0)
    assert scores["apls"] == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))


def test_detour_costs_its_relative_length_difference() -> None:
    truth = lines_graph([LineString([(0, 0), (100, 0)])])
    detour = lines_graph([LineString([(0, 0), (50, 30), (100, 0)])])
    scores = apls(truth, detour, spacing=None, buffer=1.0)
    lp = 2 * np.hypot(50, 30)
    assert scores["apls_gt_to_prop"] == pytest.approx(1 - abs(100 - lp) / 100)


def test_no_proposal_scores_zero_and_no_truth_is_undefined() -> None:
    truth = lines_graph([LineString([(0, 0), (100, 0)])])
    empty = lines_graph([])
    assert apls(truth, empty)["apls"] == 0.0
    assert apls(empty, truth)["apls"] == 0.0  # roads where there are none
    assert apls(empty, empty.copy())["apls"] is None


def test_densify_puts_nodes_every_spacing() -> None:
    g = densify(lines_graph([LineString([(0, 0), (100, 0)])]), 25.0)
    assert g.number_of_nodes() == 5
    assert sum(d["length"] for *_, d in g.edges(data=True)) == pytest.approx(100.0)


def test_completeness_correctness_quality() -> None:
    truth = np.zeros((50, 100), bool)
    truth[20:25, 10:90] = True  # centre line ~ row 22, 80 px
    pred = np.zeros_like(truth)
    pred[21:24, 10:50] = True  # the left half of it
    pred[40:43, 10:50] = True  # and a road that is not there
    counts = buffer_counts(pred, truth, tolerance=3)
    scores = buffer_scores(counts)
    assert scores["completeness"] == pytest.approx(0.5, abs=0.06)
    assert scores["correctness"] == pytest.approx(0.5, abs=0.06)
    assert 0.2 < scores["quality"] < scores["completeness"]
    assert buffer_scores(buffer_counts(truth, truth, 1))["quality"] == pytest.approx(1.0)


def test_road_scores_pool_regions() -> None:
    truth = np.zeros((60, 200), bool)
    truth[28:33, :] = True
    roads = RoadScores({"tolerance_m": 3.0, "spur_m": 5.0, "gap_m": 5.0, "min_length_m": 5.0})
    roads.add(truth, truth, 1.0)
    cut = truth.copy()
    cut[:, 95:115] = False
    roads.add(cut, truth, 1.0)
    result = roads.result()
    assert result["apls_regions"] == 2
    assert 0.5 < result["apls"] < 1.0  # one perfect region, one cut
    assert result["completeness"] < 1.0 and result["correctness"] == pytest.approx(1.0)
