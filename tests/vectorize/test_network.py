"""Tests for geounet.vectorize.network: road masks to cleaned line networks."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString

from geounet.vectorize.network import (
    NetworkParams,
    bridge_gaps,
    clean_network,
    lines_graph,
    links_to_lines,
    mask_network,
    prune_spurs,
    skeleton_links,
)


def network(mask: np.ndarray) -> list[LineString]:
    return links_to_lines(skeleton_links(mask))


def degrees(lines: list[LineString]) -> list[int]:
    return sorted(d for _, d in lines_graph(lines).degree())


def test_cross_is_four_edges_meeting_at_one_junction() -> None:
    m = np.zeros((101, 101), bool)
    m[50, 10:91] = True
    m[10:91, 50] = True
    lines = network(m)
    assert len(lines) == 4
    assert sum(g.length for g in lines) == pytest.approx(160.0)  # 4 arms of 40 px
    assert degrees(lines) == [1, 1, 1, 1, 4]


def test_thick_t_gives_a_t_junction_near_the_centre_lines() -> None:
    m = np.zeros((120, 120), bool)
    m[15:26, 10:111] = True  # road 11 px wide, centre row 20
    m[20:111, 55:66] = True  # road down from it, centre column 60
    lines = network(m)
    assert degrees(lines) == [1, 1, 1, 3]
    total = sum(g.length for g in lines)
    # centre lines 100 + 90 px, shortened at the 3 ends by up to half the width
    assert 190 - 3 * 6 <= total <= 190 + 2
    junction = next(n for n, d in lines_graph(lines).degree() if d == 3)
    assert abs(junction[0] - 60.5) <= 2 and abs(junction[1] - 20.5) <= 2


def test_loop_is_one_closed_line_of_known_length() -> None:
    m = np.zeros((101, 101), bool)
    m[20, 20:81] = m[80, 20:81] = True
    m[20:81, 20] = m[20:81, 80] = True
    lines = network(m)
    assert len(lines) == 1 and lines[0].is_ring
    # 4 sides of 60 px; the thinning cuts each corner pixel into a diagonal step
    assert lines[0].length == pytest.approx(4 * 58 + 4 * np.sqrt(2))


def test_windows_with_halo_give_the_whole_mask_network() -> None:
    m = np.zeros((300, 300), bool)
    m[100:110, :] = True
    m[:, 150:158] = True
    m[200:205, 20:280] = True
    whole = network(m)
    tiled = mask_network(
        lambda r, c, h, w: m[r : r + h, c : c + w], m.shape, NetworkParams(), window=64
    )
    assert shapely.MultiLineString(tiled).equals(shapely.MultiLineString(whole))
    assert len(tiled) == len(whole)


def test_short_spur_is_pruned_and_long_branch_kept() -> None:
    main = LineString([(0, 0), (50, 0)])
    spur = LineString([(50, 0), (50, 4)])
    branch = LineString([(70, 0), (70, 40)])
    lines = [main, LineString([(50, 0), (70, 0)]), LineString([(70, 0), (100, 0)]), spur, branch]
    graph = prune_spurs(lines_graph(lines), spur=5.0)
    total = sum(d["length"] for *_, d in graph.edges(data=True))
    assert total == pytest.approx(100 + 40)  # the 4-px spur is gone, the 40-px branch kept
    assert sorted(d for _, d in graph.degree()) == [1, 1, 1, 3]


def test_gap_between_two_ends_is_bridged_and_too_wide_gap_is_not() -> None:
    lines = [LineString([(0, 0), (40, 0)]), LineString([(46, 0), (100, 0)])]
    joined = bridge_gaps(lines_graph(lines), gap=8.0)
    assert joined.number_of_edges() == 3
    assert sorted(d for _, d in joined.degree()) == [1, 1, 2, 2]
    kept = bridge_gaps(lines_graph(lines), gap=5.0)
    assert kept.number_of_edges() == 2


def test_end_near_the_middle_of_a_road_joins_it_at_a_new_junction() -> None:
    road = LineString([(0, 0), (100, 0)])
    side = LineString([(50, 5), (50, 60)])  # stops 5 px short of the road
    joined = bridge_gaps(lines_graph([road, side]), gap=8.0)
    assert (50.0, 0.0) in joined.nodes and joined.degree((50.0, 0.0)) == 3


def test_clean_network_drops_short_isolated_pieces() -> None:
    lines = [LineString([(0, 0), (100, 0)]), LineString([(0, 50), (6, 50)])]
    out = clean_network(lines, NetworkParams(min_length=10.0))
    assert len(out) == 1 and out[0].length == 100


def test_windows_around_a_blob_wider_than_the_halo_still_match_the_whole() -> None:
    m = np.zeros((500, 500), bool)
    m[50:450, 50:450] = True  # a car park 400 px wide: thinning reaches 200 px deep
    m[240:250, :] = True
    whole = network(m)
    tiled = mask_network(
        lambda r, c, h, w: m[r : r + h, c : c + w], m.shape, NetworkParams(), window=128
    )
    assert shapely.MultiLineString(tiled).equals(shapely.MultiLineString(whole))


def test_a_road_passing_close_wins_over_a_farther_line_end() -> None:
    road = LineString([(0, 0), (100, 0)])
    dead_end = LineString([(50, 2), (50, 60)])  # stops 2 px from the road
    other = LineString([(66, 2), (90, 2)])  # an end 16 px away
    joined = bridge_gaps(lines_graph([road, dead_end, other]), gap=20.0)
    assert joined.has_edge((50.0, 2.0), (50.0, 0.0))
    assert not joined.has_edge((50.0, 2.0), (66.0, 2.0))


def test_a_small_star_keeps_its_longest_branches() -> None:
    star = [
        LineString([(0, 0), (4, 0)]),
        LineString([(0, 0), (0, 3)]),
        LineString([(0, 0), (-5, 0)]),
    ]
    graph = prune_spurs(lines_graph(star), spur=10.0)
    total = sum(d["length"] for *_, d in graph.edges(data=True))
    assert total == pytest.approx(9.0)  # the 3-px branch goes, the line of 4 + 5 stays
