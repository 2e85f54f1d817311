"""Road masks to road networks: skeleton, graph, spur pruning, gap bridging, lines.

:func:`mask_network` thins a road mask to a one-pixel skeleton
(:func:`skimage.morphology.skeletonize`), turns skeleton pixels into a graph (nodes at
junctions and ends, edges along the centre lines), prunes dead-end spurs shorter than
``spur`` (the fringe of a thinned blob, not a road), bridges breaks shorter than ``gap``
between a line end and another part of the network, and drops isolated pieces shorter
than ``min_length``. Everything is in pixel units here; :mod:`geounet.vectorize.pipeline`
converts metres and writes map coordinates.

Large rasters are read in windows with a halo: each window's skeleton is computed with
its surroundings, and each pixel link belongs to the window of its first pixel, so the
links of all windows are the links of the whole raster's skeleton (no seams). Thinning
reaches as far inside as a road is wide, so the halo grows with the deepest road pixel
of the window (up to :data:`MAX_HALO`: wider blobs than that may seam).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry import LineString, MultiLineString, Point

# Forward neighbours (row, col): each undirected 8-neighbour link is found once.
_FORWARD = ((0, 1), (1, -1), (1, 0), (1, 1))
HALO = 64  # pixels read around each window (more around wide roads), so that the
MAX_HALO = 1024  # skeleton inside is the whole raster's; areas deeper than this may seam


@dataclass(frozen=True)
class NetworkParams:
    """Network clean-up, in pixels.

    Attributes:
        spur: Dead-end branches shorter than this (ending at a junction) are pruned.
        gap: A line end this close to another part of the network is joined to it.
        min_length: Connected pieces shorter than this in total are dropped.
        simplify: Douglas-Peucker tolerance of the output lines (0 = off).
    """

    spur: float = 0.0
    gap: float = 0.0
    min_length: float = 0.0
    simplify: float = 0.0


def skeleton(mask: np.ndarray) -> np.ndarray:
    """The one-pixel-wide skeleton of a boolean mask (:func:`skimage.morphology.skeletonize`)."""
    from skimage.morphology import skeletonize

    return skeletonize(np.asarray(mask, dtype=bool))


def skeleton_links(mask: np.ndarray, core: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Links between 8-neighbour skeleton pixels of a boolean mask (see
    :func:`pixel_links`)."""
    return pixel_links(skeleton(mask), core)


def pixel_links(skel: np.ndarray, core: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Links between 8-neighbour pixels of a skeleton.

    Args:
        skel: A one-pixel-wide skeleton of a window (with its halo).
        core: ``(row, col, height, width)`` of the pixels whose links to return
            (default: the whole array). Links leave the core forwards (right, down).

    Returns:
        (n, 4) int array of ``row0, col0, row1, col1`` in the array's pixel indexes.
        Diagonal links are left out where an orthogonal path of two links joins the
        same pixels, so that corners make no triangles.
    """
    h, w = skel.shape
    r0, c0, ch, cw = core if core is not None else (0, 0, h, w)
    padded = np.zeros((h + 2, w + 2), dtype=bool)
    padded[1:-1, 1:-1] = skel
    rows, cols = np.nonzero(skel[r0 : r0 + ch, c0 : c0 + cw])
    rows, cols = rows + r0, cols + c0

    def at(dr: int, dc: int) -> np.ndarray:
        return padded[rows + dr + 1, cols + dc + 1]

    links = []
    for dr, dc in _FORWARD:
        keep = at(dr, dc)
        if dr and dc:  # diagonal: only where no orthogonal two-step path exists
            keep &= ~at(0, dc) & ~at(dr, 0)
        links.append(np.column_stack([rows[keep], cols[keep], rows[keep] + dr, cols[keep] + dc]))
    return np.concatenate(links) if links else np.zeros((0, 4), dtype=int)


def links_to_lines(links: np.ndarray) -> list[LineString]:
    """Pixel links merged into lines through pixels of two links (pixel-centre coordinates
    ``(col + 0.5, row + 0.5)``); lines end at junctions and ends, loops are closed lines."""
    if len(links) == 0:
        return []
    xy = links[:, [1, 0, 3, 2]].astype(float) + 0.5
    segments = shapely.linestrings(xy.reshape(-1, 2, 2))
    merged = shapely.line_merge(shapely.multilinestrings(segments))
    return list(shapely.get_parts(merged))


def lines_graph(lines: Iterable[LineString], *, node: bool = False) -> nx.MultiGraph:
    """A graph of lines: nodes at line ends (coordinate tuples, attribute ``point``),
    one edge per line with ``geometry`` and ``length``.

    Args:
        lines: LineStrings (MultiLineStrings are split).
        node: Split lines where they cross or touch first (centre lines drawn by hand).
    """
    geoms = [g for g in shapely.get_parts(np.asarray(list(lines), dtype=object)) if not g.is_empty]
    if node and geoms:
        geoms = list(shapely.get_parts(shapely.line_merge(shapely.node(MultiLineString(geoms)))))
    graph = nx.MultiGraph()
    for line in geoms:
        coords = np.asarray(line.coords)
        if len(coords) < 2:
            continue
        u, v = tuple(coords[0]), tuple(coords[-1])
        graph.add_node(u, point=u)
        graph.add_node(v, point=v)
        graph.add_edge(u, v, geometry=line, length=line.length)
    return graph


def graph_lines(graph: nx.MultiGraph) -> list[LineString]:
    """The edges of a graph as lines, merged through nodes of degree two."""
    edges = [d["geometry"] for _, _, d in graph.edges(data=True)]
    if not edges:
        return []
    return list(shapely.get_parts(shapely.line_merge(MultiLineString(edges))))


def prune_spurs(graph: nx.MultiGraph, spur: float, rounds: int = 3) -> nx.MultiGraph:
    """Remove dead-end edges shorter than ``spur`` that hang off a junction (degree >= 3),
    merging the lines that then meet at nodes of degree two; a few rounds, so that the
    spurs of spurs go too. Isolated lines are kept (see :func:`drop_short`)."""
    for _ in range(rounds):
        doomed = []
        for u, v, key, data in graph.edges(keys=True, data=True):
            if u == v or data["length"] >= spur:
                continue
            du, dv = graph.degree(u), graph.degree(v)
            if (du == 1 and dv >= 3) or (dv == 1 and du >= 3):
                doomed.append((u, v, key, u if du == 1 else v))
        if not doomed:
            break
        doomed = _spare_last_branches(graph, doomed)
        for u, v, key, end in doomed:
            if graph.has_edge(u, v, key):
                graph.remove_edge(u, v, key)
                graph.remove_node(end)
        graph = lines_graph(graph_lines(graph))
    return graph


def _spare_last_branches(graph: nx.MultiGraph, doomed: list) -> list:
    """Spurs to remove, less the longest ones of a junction that would otherwise keep
    fewer than two branches (a small isolated star stays a line, see drop_short)."""
    by_junction: dict = {}
    for item in doomed:
        u, v, _, end = item
        by_junction.setdefault(v if end == u else u, []).append(item)
    out = []
    for junction, items in by_junction.items():
        spare = max(0, 2 - (graph.degree(junction) - len(items)))
        items.sort(key=lambda it: graph.edges[it[0], it[1], it[2]]["length"])
        out += items[: len(items) - spare]
    return out


def drop_short(graph: nx.MultiGraph, min_length: float) -> nx.MultiGraph:
    """Remove connected pieces whose total length is under ``min_length``."""
    for part in list(nx.connected_components(graph)):
        sub = graph.subgraph(part)
        if sum(d["length"] for _, _, d in sub.edges(data=True)) < min_length:
            graph.remove_nodes_from(part)
    return graph


def bridge_gaps(graph: nx.MultiGraph, gap: float) -> nx.MultiGraph:
    """Join each line end to the nearest part of another piece of the network within
    ``gap``: to that piece's nearest end if one is within ``gap``, else to the nearest
    point of its lines (which is split there). Returns the graph with the bridges."""
    if gap <= 0:
        return graph
    pieces = {n: i for i, part in enumerate(nx.connected_components(graph)) for n in part}
    parent = list(range(max(pieces.values(), default=-1) + 1))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    ends = [n for n in graph.nodes if graph.degree(n) == 1]
    for end in ends:
        if graph.degree(end) != 1:  # already bridged from the other side
            continue
        here = find(pieces[end])
        p = Point(end)
        others = [n for n in ends if find(pieces[n]) != here and graph.degree(n) == 1]
        near_end = None
        if others:
            d = np.hypot(*(np.asarray(others) - np.asarray(end)).T)
            if d.min() <= gap:
                near_end = (float(d.min()), others[int(d.argmin())])
        near_line = None
        for u, v, key, data in graph.edges(keys=True, data=True):
            if find(pieces[u]) == here:
                continue
            dist = data["geometry"].distance(p)
            if dist <= gap and (near_line is None or dist < near_line[0]):
                near_line = (dist, u, v, key)
        if near_end is None and near_line is None:
            continue
        # the nearest part of another piece; its end when about as near (a break in a
        # road), rather than a road passing closer (a T junction that was missed)
        if near_end is not None and (near_line is None or near_end[0] <= near_line[0] + 1.0):
            target = near_end[1]
        else:
            target = split_edge(graph, *near_line[1:], p)
            pieces[target] = pieces[near_line[1]]
        bridge = LineString([end, target])
        graph.add_edge(end, target, geometry=bridge, length=bridge.length)
        parent[find(pieces[target])] = here
    return graph


def split_edge(graph: nx.MultiGraph, u, v, key, point: Point) -> tuple[float, float]:
    """Split edge ``(u, v, key)`` at the point of its line nearest ``point``; the new
    node (a coordinate tuple) joins both halves."""
    line = graph.edges[u, v, key]["geometry"]
    at = line.project(point)
    if at <= 1e-9:
        return tuple(line.coords[0])
    if at >= line.length - 1e-9:
        return tuple(line.coords[-1])
    coords = np.asarray(line.coords)
    steps = np.r_[0.0, np.cumsum(np.hypot(*np.diff(coords, axis=0).T))]
    i = int(np.searchsorted(steps, at, side="right"))
    cut = line.interpolate(at)
    node = (cut.x, cut.y)
    first = LineString([*coords[:i], node])
    second = LineString([node, *coords[i:]])
    graph.remove_edge(u, v, key)
    start, stop = tuple(coords[0]), tuple(coords[-1])
    graph.add_node(node, point=node)
    graph.add_edge(start, node, geometry=first, length=first.length)
    graph.add_edge(node, stop, geometry=second, length=second.length)
    return node


def clean_network(lines: list[LineString], params: NetworkParams) -> list[LineString]:
    """Prune spurs, bridge gaps, drop short pieces and simplify; lines merged through
    nodes of degree two."""
    graph = lines_graph(lines)
    if params.spur > 0:
        graph = prune_spurs(graph, params.spur)
    graph = bridge_gaps(graph, params.gap)
    if params.min_length > 0:
        graph = drop_short(graph, params.min_length)
    out = graph_lines(graph)
    if params.simplify > 0:
        out = list(shapely.simplify(np.asarray(out, dtype=object), params.simplify))
    return [g for g in out if not g.is_empty and g.length > 0]


def mask_network(
    read: Callable[[int, int, int, int], np.ndarray],
    shape: tuple[int, int],
    params: NetworkParams,
    *,
    window: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> list[LineString]:
    """The road network of a mask read window by window.

    Args:
        read: ``read(row, col, height, width)`` -> boolean road mask of that window.
        shape: (height, width) of the whole mask.
        params: Clean-up settings in pixels.
        window: Side of the windows (the halo of :data:`HALO` pixels comes on top).
        progress: Called with (windows done, windows in all).

    Returns:
        LineStrings in pixel coordinates (x = column, y = row; pixel centres at .5).
    """
    height, width = shape
    starts = [(r, c) for r in range(0, height, window) for c in range(0, width, window)]
    links = []
    for k, (r, c) in enumerate(starts):
        halo = HALO
        while True:  # thinning reaches as far as the widest road is deep: widen to match
            top, left = max(0, r - halo), max(0, c - halo)
            bottom, right = min(height, r + window + halo), min(width, c + window + halo)
            mask = read(top, left, bottom - top, right - left)
            depth = float(ndimage.distance_transform_edt(mask).max()) if mask.any() else 0.0
            if depth + 16 <= halo or halo >= MAX_HALO:
                break
            halo = min(MAX_HALO, int(depth) + 32)
        core = (r - top, c - left, min(window, height - r), min(window, width - c))
        found = skeleton_links(mask, core)
        found[:, [0, 2]] += top
        found[:, [1, 3]] += left
        links.append(found)
        if progress is not None:
            progress(k + 1, len(starts))
    lines = links_to_lines(np.concatenate(links) if links else np.zeros((0, 4), dtype=int))
    return clean_network(lines, params)
