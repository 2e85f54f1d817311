"""Class maps to polygons, streamed by windows with seams merged.

The raster is read a window at a time. In each window every connected region of each
selected class gets a label (:func:`scipy.ndimage.label`) and its outline
(:func:`rasterio.features.shapes`) in pixel coordinates, which are exact integers. Regions
that touch an inner window edge are kept aside; comparing the labels on both sides of each
seam tells which of them are pieces of one region (a union-find), and a region is merged
(:func:`shapely.union_all`) and emitted as soon as no unread window can extend it.
The result equals polygonizing the whole raster at once, while memory holds a few windows
plus the regions still open along the current row of windows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage
from skimage import measure

from geounet.errors import DataError, InputFileNotFoundError, InvalidRasterError
from geounet.io.raster import check_georeferenced, open_raster, read_errors
from geounet.io.write import (
    CLASS_FIELD_TAG,
    CLASS_MAP_TAG,
    CLASSES_TAG,
    INSTANCE_COLOR_TAG,
    INSTANCES_TAG,
    LINES_TAG,
)

Progress = Callable[[int, int], None]


@dataclass
class Regions:
    """Polygonized regions in pixel coordinates (x = column, y = row), one per row.

    Attributes:
        class_ids: Class id of each region.
        geoms: Polygon (or, with 8-connectivity, MultiPolygon) per region.
        pixels: Pixel count per region.
        prob_sum: Sum of the region's class probability over its pixels (or ``None``).
        votes: Pixels of each class of a class map inside the region (instance maps
            with a class map), or ``None``.
    """

    class_ids: list[int] = field(default_factory=list)
    geoms: list[Any] = field(default_factory=list)
    pixels: list[int] = field(default_factory=list)
    prob_sum: list[float] | None = None
    votes: list[np.ndarray] | None = None

    def add(
        self, class_id: int, geom: Any, pixels: int, prob_sum: float, votes: Any = None
    ) -> None:
        self.class_ids.append(class_id)
        self.geoms.append(geom)
        self.pixels.append(pixels)
        if self.prob_sum is not None:
            self.prob_sum.append(prob_sum)
        if self.votes is not None:
            self.votes.append(votes)

    def sorted(self) -> Regions:
        """Regions ordered by class, then by their first pixel in raster scan order.

        The first pixel (top row, leftmost) of a region is unique, so the order does not
        depend on how the raster was split into windows.
        """
        if not self.geoms:
            return self
        coords, index = shapely.get_coordinates(
            np.asarray(self.geoms, dtype=object), return_index=True
        )
        first = np.lexsort((coords[:, 0], coords[:, 1], index))
        starts = np.searchsorted(index[first], np.arange(len(self.geoms)))
        top_left = coords[first[starts]]
        order = np.lexsort((top_left[:, 0], top_left[:, 1], self.class_ids))
        return Regions(
            [self.class_ids[i] for i in order],
            [self.geoms[i] for i in order],
            [self.pixels[i] for i in order],
            None if self.prob_sum is None else [self.prob_sum[i] for i in order],
            None if self.votes is None else [self.votes[i] for i in order],
        )


class ClassSource:
    """Where the class map (and optional probabilities) comes from, window by window.

    Args:
        height, width: Raster size.
        read: ``read(row, col, h, w)`` -> integer class ids of that window.
        read_prob: ``read_prob(row, col, h, w, class_ids)`` -> float32 probabilities in
            [0, 1] of ``class_ids`` (one plane per id), or ``None`` without probabilities.
        block: Natural (height, width) block of the storage, to align windows with.
        nodata: Class id marking pixels without data.
    """

    def __init__(
        self,
        height: int,
        width: int,
        read: Callable[[int, int, int, int], np.ndarray],
        read_prob: Callable[..., np.ndarray] | None = None,
        block: tuple[int, int] = (1, 1),
        nodata: int | None = None,
    ) -> None:
        self.height, self.width, self.block, self.nodata = height, width, block, nodata
        self.read, self.read_prob = read, read_prob

    def windows(self, size: int) -> list[list[tuple[int, int, int, int]]]:
        """Rows of non-overlapping ``(row, col, h, w)`` windows covering the raster."""
        bh, bw = self.block
        if bw >= self.width and bh < size:  # striped storage: read whole strips
            h = max(bh, (size * size // max(self.width, 1)) // bh * bh)
            w = self.width
        else:
            h = max(bh, size // bh * bh)
            w = max(bw, size // bw * bw)
        return [
            [
                (r, c, min(h, self.height - r), min(w, self.width - c))
                for c in range(0, self.width, w)
            ]
            for r in range(0, self.height, h)
        ]


def polygonize_source(
    source: ClassSource,
    classes: list[int] | None,
    *,
    connectivity: int = 4,
    window: int = 2048,
    progress: Progress | None = None,
    instances: bool = False,
    votes: ClassSource | None = None,
    vote_classes: int = 0,
) -> Regions:
    """Polygonize ``source`` window by window (see the module docstring).

    Args:
        source: The class map.
        classes: Class ids to polygonize; ``None``: all but 0 and nodata.
        connectivity: 4 or 8.
        window: Window side in pixels.
        progress: Called with (windows done, windows in all).
        instances: ``source`` is an instance map (object ids, 0 none): every connected
            region of one id is a region, even where objects touch; ``classes`` is ignored
            and every region is of class 1 (sorted by position).

    Returns:
        The regions in pixel coordinates, sorted.
    """
    grid = source.windows(window)
    merger = _SeamMerger(connectivity, source.read_prob is not None, source.width, instances)
    if votes is not None:
        merger.regions.votes, merger.votes, merger.vote_classes = [], votes, vote_classes
    flat = [(r, c, win) for r, row in enumerate(grid) for c, win in enumerate(row)]
    # One reader thread decodes the next window while this one is polygonized (GDAL
    # releases the GIL while it reads); only that thread touches the class-map dataset.
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(source.read, *flat[0][2]) if flat else None
        for k, (r, c, (y, x, h, w)) in enumerate(flat):
            values = pending.result()
            if k + 1 < len(flat):
                pending = reader.submit(source.read, *flat[k + 1][2])
            last_row, last_col = r == len(grid) - 1, c == len(grid[r]) - 1
            ids = _window_ids(values, classes, source.nodata)
            merger.add_window(values, ids, source, (y, x, h, w), c, last_row, last_col)
            if progress is not None:
                progress(k + 1, len(flat))
            if last_col:
                merger.end_row(last_row)
    if instances:  # the object ids served to label regions; every object is class 1
        merger.regions.class_ids = [1] * len(merger.regions.class_ids)
    return merger.regions.sorted()


class _SeamMerger:
    """Label windows, hold regions that touch inner edges, merge them across seams."""

    def __init__(
        self, connectivity: int, with_prob: bool, width: int, instances: bool = False
    ) -> None:
        self.connectivity = connectivity
        self.instances = instances
        self.structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
        self.regions = Regions(prob_sum=[] if with_prob else None)
        self.votes: ClassSource | None = None  # a class map whose classes objects count
        self.vote_classes = 0
        self.next_label = 1
        # label -> [class_id, geom, pixels, prob_sum, open_below]
        self.pending: dict[int, list] = {}
        self.parent: dict[int, int] = {}
        self.row_labels: set[int] = set()
        self.above = (np.zeros(width, np.int64), np.zeros(width, np.int64))  # labels, values
        self.below = (np.zeros(width, np.int64), np.zeros(width, np.int64))
        self.left: tuple[np.ndarray, np.ndarray] | None = None
        self.first_row = True

    def add_window(
        self,
        values: np.ndarray,
        ids: list[int],
        source: ClassSource,
        win: tuple[int, int, int, int],
        col_index: int,
        last_row: bool,
        last_col: bool,
    ) -> None:
        y, x, _h, w = win
        labels, classes = self._label(values, ids)
        n = len(classes) - 1
        base = self.next_label - 1
        self.next_label += n
        sums = counts = None
        if self.regions.prob_sum is not None and n:
            sums = self._prob_sums(source, win, values, ids, labels, n)
        if self.votes is not None and n:
            counts = self._vote_counts(win, labels, n)
        # Labels on inner edges may continue in a neighbouring window.
        edges = []
        if not self.first_row:
            edges.append(labels[0])
        if col_index > 0:
            edges.append(labels[:, 0])
        if not last_col:
            edges.append(labels[:, -1])
        if not last_row:
            edges.append(labels[-1])
        border = set(np.unique(np.concatenate(edges)).tolist()) if edges else set()
        border.discard(0)
        below = set(np.unique(labels[-1]).tolist()) if not last_row else set()
        if n:
            shapes = list(
                rasterio.features.shapes(
                    labels,
                    mask=labels > 0,
                    connectivity=self.connectivity,
                    transform=Affine.translation(x, y),
                )
            )
            polys = _polygons([geom["coordinates"] for geom, _ in shapes])
            # In pixel units a region's area is its pixel count, exactly.
            pixels = np.rint(shapely.area(polys)).astype(np.int64)
            for (_, value), poly, count in zip(shapes, polys, pixels, strict=True):
                lab = int(value)
                prob = float(sums[lab]) if sums is not None else 0.0
                vote = counts[lab] if counts is not None else None
                if lab in border:
                    self.pending[base + lab] = [
                        int(classes[lab]),
                        poly,
                        int(count),
                        prob,
                        lab in below,
                        vote,
                    ]
                    self.row_labels.add(base + lab)
                else:
                    self.regions.add(int(classes[lab]), poly, int(count), prob, vote)

        def edge(index: Any) -> tuple[np.ndarray, np.ndarray]:
            lab = labels[index].astype(np.int64)
            return np.where(lab > 0, lab + base, 0), values[index].astype(np.int64)

        if col_index > 0 and self.left is not None:
            self._join(self.left, edge((slice(None), 0)))
        if not self.first_row:
            lo, hi = max(x - 1, 0), min(x + w + 1, self.above[0].size)
            above = (self.above[0][lo:hi], self.above[1][lo:hi])
            self._join(above, edge(0), offset=x - lo)
        self.left = edge((slice(None), -1))
        self.below[0][x : x + w], self.below[1][x : x + w] = edge(-1)

    def end_row(self, last_row: bool) -> None:
        """Emit every held region that no later window can extend."""
        groups: dict[int, list[int]] = {}
        for lab in self.pending:
            groups.setdefault(self._find(lab), []).append(lab)
        for members in groups.values():
            if not last_row and any(self.pending[m][4] and m in self.row_labels for m in members):
                continue
            parts = [self.pending.pop(m) for m in members]
            for m in members:
                self.parent.pop(m, None)
            geom = parts[0][1] if len(parts) == 1 else _union([p[1] for p in parts])
            vote = None if parts[0][5] is None else np.sum([p[5] for p in parts], axis=0)
            self.regions.add(
                parts[0][0], geom, sum(p[2] for p in parts), sum(p[3] for p in parts), vote
            )
        self.row_labels = set()
        self.above, self.below = self.below, self.above
        self.left = None
        self.first_row = False

    def _label(self, values: np.ndarray, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Window-local region labels (int32) and the class id of each label (0 unused)."""
        if self.instances:  # regions of equal non-zero value, in one pass
            lab, n = measure.label(
                values,
                background=0,
                connectivity=1 if self.connectivity == 4 else 2,
                return_num=True,
            )
            classes = np.zeros(n + 1, np.int64)
            classes[lab.ravel()] = values.ravel()
            classes[0] = 0
            return lab.astype(np.int32, copy=False), classes
        labels = np.zeros(values.shape, np.int32)
        classes = [0]
        for cid in ids:
            mask = values == cid
            lab, n = ndimage.label(mask, structure=self.structure)
            if n == 0:
                continue
            if len(classes) == 1:
                labels = lab.astype(np.int32, copy=False)
            else:
                labels[mask] = lab[mask] + (len(classes) - 1)
            classes.extend([cid] * n)
        return labels, np.asarray(classes, np.int64)

    def _vote_counts(self, win: tuple[int, int, int, int], labels: np.ndarray, n: int):
        """Pixels of each class of the vote map per label: (n + 1, classes) int64."""
        k = self.vote_classes
        values = np.asarray(self.votes.read(*win)).astype(np.int64)
        inside = (values >= 0) & (values < k) & (labels > 0)
        key = labels[inside].astype(np.int64) * k + values[inside]
        return np.bincount(key, minlength=(n + 1) * k).reshape(n + 1, k)

    def _prob_sums(
        self,
        source: ClassSource,
        win: tuple[int, int, int, int],
        values: np.ndarray,
        ids: list[int],
        labels: np.ndarray,
        n: int,
    ) -> np.ndarray:
        """Sum, per label, of each pixel's probability for its own class."""
        y, x, h, w = win
        if self.instances:  # every object is of class 1, or not background (votes)
            if self.votes is not None:
                plane = 1.0 - source.read_prob(y, x, h, w, [0])[0].astype(np.float64)
            else:
                plane = source.read_prob(y, x, h, w, [1])[0].astype(np.float64)
            conf = np.where(values > 0, plane, 0.0)
            return np.bincount(labels.ravel(), weights=conf.ravel(), minlength=n + 1)
        planes = source.read_prob(y, x, h, w, ids)
        conf = np.zeros(values.shape, np.float64)
        for plane, cid in zip(planes, ids, strict=True):
            sel = values == cid
            conf[sel] = plane[sel]
        return np.bincount(labels.ravel(), weights=conf.ravel(), minlength=n + 1)

    def _join(self, a: tuple, b: tuple, offset: int = 0) -> None:
        """Union labels facing each other across a seam (``b`` starts at ``a[offset]``)."""
        (la, va), (lb, vb) = a, b
        shifts = (0,) if self.connectivity == 4 else (-1, 0, 1)
        for s in shifts:
            # b[i] faces a[i + offset + s]
            i = np.arange(lb.size)
            j = i + offset + s
            ok = (j >= 0) & (j < la.size)
            i, j = i[ok], j[ok]
            hit = (lb[i] > 0) & (la[j] > 0) & (vb[i] == va[j])
            if not hit.any():
                continue
            pairs = np.unique(np.stack([la[j][hit], lb[i][hit]], axis=1), axis=0)
            for p, q in pairs.tolist():
                self._union(p, q)

    def _find(self, x: int) -> int:
        parent = self.parent
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _polygons(rings_per_polygon: list[list]) -> np.ndarray:
    """Shapely polygons from GeoJSON-style ring lists, built in one vectorized call."""
    if not rings_per_polygon:
        return np.zeros(0, dtype=object)
    rings = [np.asarray(r, dtype=float) for poly in rings_per_polygon for r in poly]
    ring_index = np.repeat(np.arange(len(rings)), [len(r) for r in rings])
    linear = shapely.linearrings(np.concatenate(rings), indices=ring_index)
    counts = [len(poly) for poly in rings_per_polygon]
    return shapely.polygons(linear, indices=np.repeat(np.arange(len(counts)), counts))


def _union(geoms: list[Any]) -> Any:
    """Union of the pieces of one region.

    Not ``coverage_union_all``: pieces on both sides of a seam need not have vertices at
    the same places along it, which that function requires. Vertices left in the middle
    of straight edges along former seams are removed (exact on the integer pixel grid),
    so the result has the same vertices as polygonizing the whole raster.
    """
    return shapely.simplify(shapely.union_all(geoms), 0.0, preserve_topology=True)


def _window_ids(values: np.ndarray, classes: list[int] | None, nodata: int | None) -> list[int]:
    if classes is not None:
        return classes
    top = int(values.max(initial=0))
    if top <= 1 and int(values.min(initial=0)) >= 0:  # binary masks: skip the histogram
        present = [top]
    elif values.dtype == np.uint8:
        present = np.flatnonzero(np.bincount(values.ravel(), minlength=256)).tolist()
    else:
        present = np.unique(values).tolist()
    return [int(v) for v in present if v != 0 and v != nodata]


# --------------------------------------------------------------------------- sources


def array_source(
    mask: np.ndarray, probabilities: np.ndarray | None = None, nodata: int | None = None
) -> ClassSource:
    """A :class:`ClassSource` over an in-memory class map (and (K, H, W) probabilities)."""
    mask = np.asarray(mask)
    values, nodata = as_class_array(mask, nodata)
    read_prob = None
    if probabilities is not None:
        probs = np.asarray(probabilities)
        if probs.ndim == 2:
            probs = probs[None]
        if probs.shape[1:] != values.shape:
            raise DataError(
                f"probabilities of shape {probs.shape} do not match the class map {values.shape}"
            )

        def read_prob(y: int, x: int, h: int, w: int, ids: list[int]) -> np.ndarray:
            return np.stack([_scaled(probs[_band(i, probs.shape[0])], y, x, h, w) for i in ids])

    return ClassSource(
        values.shape[0],
        values.shape[1],
        lambda y, x, h, w: values[y : y + h, x : x + w],
        read_prob,
        nodata=nodata,
    )


class RasterClassSource(ClassSource):
    """A :class:`ClassSource` reading a single-band class-map raster (and a probability
    raster on the same grid) through rasterio windows. Use as a context manager."""

    def __init__(self, path: str | os.PathLike[str], probabilities: Any = None) -> None:
        self.path = Path(path)
        self.src = open_class_map(self.path)
        self.prob_src = None
        nodata = self.src.nodata
        nodata = None if nodata is None or np.isnan(nodata) else int(nodata)
        read_prob = None
        if probabilities is not None:
            self.prob_src = _open_probabilities(Path(probabilities), self.src)
            read_prob = self._read_prob
        block = self.src.block_shapes[0]
        super().__init__(self.src.height, self.src.width, self._read, read_prob, block, nodata)

    def _read(self, y: int, x: int, h: int, w: int) -> np.ndarray:
        with read_errors(self.path, "class map"):
            data = self.src.read(1, window=((y, y + h), (x, x + w)))
        try:
            return as_class_array(data, self.nodata)[0]
        except DataError as exc:
            raise InvalidRasterError(f"{self.path}: {exc}") from exc

    def _read_prob(self, y: int, x: int, h: int, w: int, ids: list[int]) -> np.ndarray:
        src = self.prob_src
        bands = [_band(i, src.count) + 1 for i in ids]
        with read_errors(src.name, "probabilities"):
            data = src.read(bands, window=((y, y + h), (x, x + w)))
        return _to_unit(data)

    def class_names(self) -> list[str] | None:
        """Names from the ``GEOUNET_CLASSES`` tag, if present."""
        return tag_class_names(self.path, self.src.tags())

    def instance_class(self) -> str | None:
        """The objects' class name of an instance map (``GEOUNET_INSTANCES`` tag), else None."""
        return self.src.tags().get(INSTANCES_TAG)

    def instance_color(self) -> list[int] | None:
        """The RGBA colour of an instance map's objects (``GEOUNET_INSTANCE_COLOR`` tag)."""
        raw = self.src.tags().get(INSTANCE_COLOR_TAG)
        try:
            color = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return None
        return color if isinstance(color, list) and len(color) in (3, 4) else None

    def class_map(self) -> Path | None:
        """The class map of an instance map's run (``GEOUNET_CLASS_MAP`` tag), beside it."""
        name = self.src.tags().get(CLASS_MAP_TAG)
        return self.path.with_name(name) if name else None

    def class_field(self) -> str | None:
        """The vector column that repeats the class name (``GEOUNET_CLASS_FIELD`` tag)."""
        return self.src.tags().get(CLASS_FIELD_TAG)

    def line_settings(self) -> dict[str, Any] | None:
        """The network settings of a road model's class map (``GEOUNET_LINES`` tag)."""
        raw = self.src.tags().get(LINES_TAG)
        if raw is None:
            return None
        try:
            settings = json.loads(raw)
        except ValueError:
            settings = None
        if not isinstance(settings, dict):
            raise InvalidRasterError(
                f"{self.path}: tag {LINES_TAG} must be a JSON object of network settings, "
                f"got {raw!r}; remove the tag or predict again"
            )
        return settings

    def __enter__(self) -> RasterClassSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.src.close()
        if self.prob_src is not None:
            self.prob_src.close()


def open_class_map(path: Path) -> rasterio.io.DatasetReader:
    """Open a single-band class-map raster with a CRS, or raise a one-line error."""
    if not path.exists():
        raise InputFileNotFoundError(f"{path}: class-map raster not found; check the path")
    src = open_raster(path)
    try:
        check_georeferenced(src, path)
    except InvalidRasterError:
        src.close()
        raise
    if src.count != 1:
        count = src.count
        src.close()
        raise InvalidRasterError(
            f"{path}: class map must have 1 band, found {count}; pass a single-band mask"
        )
    return src


def _open_probabilities(path: Path, mask: rasterio.io.DatasetReader) -> Any:
    if not path.exists():
        raise InputFileNotFoundError(f"{path}: probability raster not found; check the path")
    src = open_raster(path)
    if (src.height, src.width) != (mask.height, mask.width) or not src.transform.almost_equals(
        mask.transform
    ):
        src.close()
        raise InvalidRasterError(
            f"{path}: probabilities are not on the class map's grid "
            f"({src.width}x{src.height} vs {mask.width}x{mask.height}); pass the "
            "--probabilities file written by the same geounet predict run"
        )
    return src


def _band(class_id: int, count: int) -> int:
    """0-based probability band of ``class_id``: band k is class k; one band is class 1."""
    if count == 1 and class_id == 1:
        return 0
    if 0 <= class_id < count and count > 1:
        return class_id
    raise DataError(
        f"no probability band for class {class_id}: the raster has {count} band(s); "
        "give one band per class (as geounet predict --probabilities writes) or one band "
        "for class 1"
    )


def _scaled(plane: np.ndarray, y: int, x: int, h: int, w: int) -> np.ndarray:
    return _to_unit(plane[y : y + h, x : x + w])


def _to_unit(data: np.ndarray) -> np.ndarray:
    """Probabilities as float32 in [0, 1]: uint8 and uint16 are scaled to their range."""
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / np.float32(np.iinfo(data.dtype).max)
    return data.astype(np.float32, copy=False)


def as_class_array(values: np.ndarray, nodata: int | None) -> tuple[np.ndarray, int | None]:
    """Class ids in an integer dtype the labeller accepts, and the nodata value.

    Non-finite pixels of float masks become nodata (a free sentinel if none is given).
    """
    if values.ndim != 2:
        raise DataError(f"class map must be 2-D, got shape {values.shape}")
    if values.dtype == bool:
        return values.astype(np.uint8), nodata
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values)
        if not np.array_equal(values[finite], np.round(values[finite])):
            raise DataError("class map holds non-integer values; pass integer class ids")
        if not finite.all():
            if nodata is None:
                nodata = int(min(values[finite].min(initial=0), 0)) - 1
            values = np.where(finite, values, nodata)
        values = values.astype(np.int64)
    elif not np.issubdtype(values.dtype, np.integer):
        raise DataError(f"class map dtype {values.dtype} is not an integer type")
    return values, nodata


def tag_class_names(path: Path, tags: dict[str, str]) -> list[str] | None:
    """Class names from a raster's ``GEOUNET_CLASSES`` tag (``None`` if absent)."""
    raw = tags.get(CLASSES_TAG)
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidRasterError(
            f"{path}: tag {CLASSES_TAG} must be a JSON list of class names, got {raw!r}; "
            "fix the tag or pass class_names=..."
        )
    return names
