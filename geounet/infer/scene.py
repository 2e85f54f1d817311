"""Scene-level prediction: a GeoTIFF in, a class map on exactly its grid out."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from scipy import ndimage

from geounet.errors import ConfigError, DataError
from geounet.infer.accumulate import BlendAccumulator
from geounet.infer.compiled import AdaptiveForward, forward_key
from geounet.infer.instances import InstanceParams, InstanceStream
from geounet.infer.sliding import blend_weights
from geounet.io.raster import RasterInfo, open_raster, raster_info, read_errors
from geounet.io.stack import acquisition_date, stack_rasters, uniform_scene
from geounet.io.style import class_colors
from geounet.io.windows import window_starts
from geounet.io.write import (
    CLASS_FIELD_TAG,
    JOB_TAG,
    LINES_TAG,
    ClassMapWriter,
    InstanceMapWriter,
)
from geounet.models.bundle import ModelMeta
from geounet.models.segmenter import Segmenter
from geounet.runtime import autocast_dtype, select_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictOptions:
    """How to run a model over a scene."""

    tile: int | None = None  # None: fitted to the scene, up to MAX_TILE (see plan_scene)
    overlap: int | None = None  # None: MIN_OVERLAP
    batch_size: int | None = None  # None: 1 window on CPUs, 4 on GPUs
    device: str = "auto"
    precision: str = "auto"
    compile: str = "auto"  # "auto", "on" or "off": see geounet.infer.compiled
    resample: bool = True
    blend: str = "cosine"
    tta: bool = False
    probabilities: str | os.PathLike[str] | None = None
    instances: str | os.PathLike[str] | None = None  # object models: the instance map
    job: str | None = None  # distributed runs: signature recorded in the finished class map

    def __post_init__(self) -> None:
        if self.tile is not None and self.tile < 16:
            raise ConfigError(f"tile {self.tile} px is too small; use --tile-size 16 or more")
        if self.overlap is not None and self.overlap < 0:
            raise ConfigError(f"overlap {self.overlap} px must be >= 0")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch size {self.batch_size} must be at least 1")
        if self.tile is not None and self.overlap is not None and self.overlap >= self.tile:
            raise ConfigError(
                f"overlap {self.overlap} px must be smaller than the window ({self.tile} px); "
                f"use --overlap up to {self.tile // 2} or a larger --tile-size"
            )


@dataclass(frozen=True)
class PredictResult:
    """A written class map and how it was made."""

    path: Path
    class_pixels: dict[str, int]
    scale: float
    seconds: float
    instances: Path | None = None
    objects: int | None = None  # number of separate objects (object models)
    reused: bool = False  # distributed runs: finished by an earlier run of the job, skipped


def predict_scene(
    model: Segmenter,
    meta: ModelMeta,
    scene: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: PredictOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PredictResult:
    """Segment a whole scene and write the class map on the scene's grid, streaming.

    The scene is processed in rows of windows: a reader thread reads the next row band
    while the model predicts the current one, blended logits are kept only for the rows
    in flight, and finished rows go to a writer thread at once, so peak memory does not
    grow with the scene size.

    Args:
        model: The trained model.
        meta: Its bundle metadata (bands, classes, resolution, tile size).
        scene: Input GeoTIFF, or a list of co-registered rasters (pre/post, dates) that
            are stacked as channels as in training.
        out: Output class-map GeoTIFF (COG, written atomically).
        options: Tile, overlap, batch size, device, precision, resampling, TTA and an
            optional probability raster.
        progress: Called as ``progress(done, total)`` over windows.

    Returns:
        A :class:`PredictResult`.
    """
    if not isinstance(scene, str | os.PathLike) or len(set(raster_info(scene).dtypes)) > 1:
        with tempfile.TemporaryDirectory() as tmp:
            single = single_file(meta, scene, Path(tmp))
            return predict_scene(model, meta, single, out, options, progress)
    start = time.perf_counter()
    options = options or PredictOptions()
    plan = plan_scene(meta, scene, options)
    predict, options = scene_predictor(model, meta, plan, options)
    counts = np.zeros(len(meta.classes), dtype=np.int64)
    with contextlib.ExitStack() as stack:
        writer, instances = open_outputs(stack, meta, plan, out, options)
        stream_scene(predict, meta, scene, plan, options, writer, instances, counts, progress)
        finish_outputs(writer, options, counts, instances)
    return scene_result(meta, out, counts, plan.scale, start, options, instances)


def single_file(
    meta: ModelMeta,
    scene: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    folder: Path,
) -> str:
    """The scene as one raster of one data type: a list of co-registered rasters stacked
    as in training, or a VRT of bands of different types, as a VRT in ``folder``."""
    if not isinstance(scene, str | os.PathLike):
        check_dates(meta, scene)
        scene = stack_rasters(scene, folder / "stack.vrt", kind=meta.stack or "dates")
    if len(set(raster_info(scene).dtypes)) > 1:
        scene = uniform_scene(scene, folder / "uniform.vrt")
    return str(scene)


# Default windows: up to MAX_TILE px a side, at least MIN_OVERLAP px shared, shrunk to
# fit the scene evenly (benchmarks/inference.py: 1024 px windows compute each pixel
# 1.2 times on a 4096 px scene, 512 px windows overlapping by 128 px 1.9 times)
MAX_TILE = 1024
MIN_OVERLAP = 64
STRIDE = 32  # window sides stay multiples of the networks' stride


@dataclass(frozen=True)
class ScenePlan:
    """How a scene is read for a model: bands, resampling, windows, class-map nodata."""

    info: RasterInfo
    indexes: list[int]
    scale: float  # the scene shrinks by this factor to the model's resolution
    tile: int  # window rows
    overlap: int  # at least this many pixels shared by neighbouring windows
    nodata: int
    tile_cols: int | None = None  # window columns (None: ``tile``)

    @property
    def model_height(self) -> int:
        """Rows of the scene at the model's resolution."""
        return max(1, round(self.info.height / self.scale))

    @property
    def model_width(self) -> int:
        """Columns of the scene at the model's resolution."""
        return max(1, round(self.info.width / self.scale))

    @property
    def window(self) -> tuple[int, int]:
        """The (rows, columns) of every window, clipped to the scene."""
        cols = self.tile_cols or self.tile
        return min(self.tile, self.model_height), min(cols, self.model_width)

    def starts(self) -> tuple[list[int], list[int]]:
        """The first rows and columns of the windows, at the model's resolution."""
        th, tw = self.window
        return (
            window_starts(self.model_height, th, min(self.overlap, th - 1)),
            window_starts(self.model_width, tw, min(self.overlap, tw - 1)),
        )


def fit_tile(size: int, tile: int, overlap: int, stride: int = STRIDE) -> int:
    """The smallest window (a multiple of ``stride``, at most ``tile``) that covers
    ``size`` pixels with as few windows as ``tile`` needs, overlapping by ``overlap``
    or more: the windows' spare overlap shrinks instead of being computed."""
    if size <= tile:
        return size
    count = len(window_starts(size, tile, overlap))
    fitted = -(-(size - overlap) // count) + overlap
    return min(tile, -(-fitted // stride) * stride)


def batch_size(options: PredictOptions, device: torch.device) -> int:
    """Windows per forward pass: the option, else 1 on CPUs (one large window keeps the
    caches warm) and 4 on GPUs."""
    if options.batch_size is not None:
        return options.batch_size
    return 4 if device.type == "cuda" else 1


def plan_scene(
    meta: ModelMeta, scene: str | os.PathLike[str], options: PredictOptions
) -> ScenePlan:
    """Check a (single-file) scene against the model and plan its prediction.

    Raises:
        DataError: The scene's bands do not fit the model, or an instance map is asked
            of a model that does not predict objects.
    """
    info = raster_info(scene)
    indexes = _check_bands(info, meta)
    scale = _scale(info, meta)
    if not options.resample and scale != 1.0:
        log.warning(
            "%s: %.3g m pixels, but the model was trained at %.3g m; predicting without "
            "resampling may degrade results",
            info.path,
            info.ground_resolution,
            meta.ground_resolution_m,
        )
        scale = 1.0
    if scale != 1.0:
        log.info("resampling %s by 1/%.3g to the model's resolution", info.path.name, scale)
    if options.instances is not None and meta.objects is None:
        raise DataError(
            f"{options.instances}: this model predicts classes, not separate objects; "
            "train with objects.enabled: true to write an instance map"
        )
    overlap = options.overlap
    if overlap is None:  # a quarter of a given window, at most MIN_OVERLAP
        overlap = min(MIN_OVERLAP, options.tile // 4) if options.tile else MIN_OVERLAP
    if options.tile:
        tile = cols = options.tile
    else:
        largest = max(meta.tile_size, MAX_TILE)
        height, width = max(1, round(info.height / scale)), max(1, round(info.width / scale))
        tile = fit_tile(height, largest, min(overlap, largest - 1))
        cols = fit_tile(width, largest, min(overlap, largest - 1))
    nodata = 255 if len(meta.classes) < 255 else 65535
    return ScenePlan(info, indexes, scale, tile, overlap, nodata, cols)


def stream_scene(
    predict: Callable[[torch.Tensor], torch.Tensor],
    meta: ModelMeta,
    scene: str | os.PathLike[str],
    plan: ScenePlan,
    options: PredictOptions,
    writer: ClassMapWriter,
    instances: InstanceStream | None,
    counts: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
    rows: tuple[int, int] | None = None,
) -> RowWriter:
    """Run ``predict`` over the scene, or over its full-resolution ``rows`` only (a band),
    into ``writer`` and ``instances``, adding class pixels to ``counts``.

    Returns:
        The row writer, whose ``chunks`` are the row counts it wrote at a time.
    """
    with SceneReader(scene, plan.info, plan.indexes, plan.scale, meta.mean) as reader:
        row_writer = RowWriter(
            writer,
            reader,
            mode=_mode(meta),
            nodata=plan.nodata,
            counts=counts,
            threshold=(meta.objects or {}).get("mask_threshold", 0.5),
            instances=instances,
            border_px=round((meta.objects or {}).get("border_px", 1) * plan.scale),
            rows=rows,
        )
        span = model_rows(*rows, plan.model_height, plan.info.height) if rows else None
        _stream(reader, predict, row_writer, plan, options, progress, span)
    return row_writer


def open_outputs(
    stack: contextlib.ExitStack,
    meta: ModelMeta,
    plan: ScenePlan,
    out: str | os.PathLike[str],
    options: PredictOptions,
) -> tuple[ClassMapWriter, InstanceStream | None]:
    """The scene's class-map writer (with the probability raster) and, for object models
    asked for one, the instance splitter writing the instance map; closed by ``stack``."""
    writer = stack.enter_context(
        ClassMapWriter(
            out,
            plan.info,
            class_names=meta.classes,
            colors=meta.colors,
            nodata=plan.nodata,
            probabilities=options.probabilities,
            probability_names=[*meta.classes, "boundary"] if meta.boundary else None,
            tags=_class_map_tags(meta),
        )
    )
    if meta.objects is None or options.instances is None:
        return writer, None
    inst_writer = stack.enter_context(
        InstanceMapWriter(
            options.instances,
            plan.info,
            meta.object_name,
            class_map=Path(out).name if meta.boundary else None,
            color=None if meta.boundary else class_colors(meta.classes, meta.colors)[1],
        )
    )
    params = InstanceParams.from_meta(meta.objects, plan.info.ground_resolution**2)
    return writer, InstanceStream(plan.info.width, params, inst_writer.write_rows)


def finish_outputs(
    writer: ClassMapWriter,
    options: PredictOptions,
    counts: np.ndarray,
    instances: InstanceStream | None,
) -> None:
    """Split the last objects, and mark the class map with the distributed job that
    wrote it (when any): signature, class pixel counts and object count, so that a rerun
    of the job skips it."""
    if instances is not None:
        instances.close()
    if options.job is None:
        return
    record = {"job": options.job, "class_pixels": counts.tolist()}
    if instances is not None:
        record["objects"] = instances.count
    writer.update_tags(**{JOB_TAG: json.dumps(record)})


def scene_result(
    meta: ModelMeta,
    out: str | os.PathLike[str],
    counts: np.ndarray,
    scale: float,
    start: float,
    options: PredictOptions,
    instances: InstanceStream | None,
) -> PredictResult:
    """The :class:`PredictResult` of a written scene (``start``: its perf_counter)."""
    return PredictResult(
        path=Path(out),
        class_pixels={name: int(n) for name, n in zip(meta.classes, counts, strict=True)},
        scale=scale,
        seconds=time.perf_counter() - start,
        instances=Path(options.instances) if instances is not None else None,
        objects=instances.count if instances is not None else None,
    )


def scene_predictor(
    model: Segmenter,
    meta: ModelMeta,
    plan: ScenePlan,
    options: PredictOptions,
    rows: tuple[int, int] | None = None,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], PredictOptions]:
    """The predictor of a planned scene (or of its full-resolution ``rows``): the model
    on the chosen device, compiled when the scene's windows repay it; and the options
    with the batch size settled for the device."""
    device = select_device(options.device)
    options = dataclasses.replace(options, batch_size=batch_size(options, device))
    row_starts, col_starts = plan.starts()
    windows = len(row_starts) * len(col_starts)
    if rows is not None:
        windows = -(-windows * (rows[1] - rows[0]) // plan.info.height)
    model = model.to(device).eval().use_channels_last()
    predictor = make_predictor(model, meta, device, options, windows=windows, window=plan.window)
    return predictor, options


def make_predictor(
    model: Segmenter,
    meta: ModelMeta,
    device: torch.device,
    options: PredictOptions,
    *,
    windows: int = 0,
    window: tuple[int, ...] | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Batch of raw windows -> class probabilities, with autocast and optional TTA.

    Given the ``windows`` to come and their ``window`` shape, the forward pass compiles
    itself when that repays it (``options.compile``, :mod:`geounet.infer.compiled`).
    """
    dtype = autocast_dtype(device, options.precision)
    binary = meta.sigmoid

    def core(batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(batch).float()
        return torch.sigmoid(logits) if binary else logits.softmax(1)

    run: Callable[[torch.Tensor], torch.Tensor] = core
    if window is not None and options.compile != "off":
        passes = (8 if len(set(window)) == 1 else 4) if options.tta else 1
        batch = options.batch_size or 1
        key = forward_key(
            json.dumps([meta.architecture, meta.arguments, meta.in_channels, meta.out_channels]),
            (batch, meta.in_channels, *window),
            dtype,
            device.type,
        )
        run = AdaptiveForward(
            core, mode=options.compile, total=windows * passes, batch=batch, key=key
        )

    def forward(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return run(batch)

    def predict(batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(device, non_blocking=True)
        if not options.tta:
            return forward(batch).cpu()
        square = batch.shape[-1] == batch.shape[-2]
        total = torch.zeros(())
        n = 0
        for k in range(4 if square else 2):
            for flip in (False, True):
                x = batch.rot90(k if square else 2 * k, (-2, -1))
                x = x.flip(-1) if flip else x
                y = forward(x)
                y = y.flip(-1) if flip else y
                total = total + y.rot90(-(k if square else 2 * k), (-2, -1))
                n += 1
        return (total / n).cpu()

    return predict


def _stream(
    reader: SceneReader,
    predict: Callable[[torch.Tensor], torch.Tensor],
    rows: RowWriter,
    plan: ScenePlan,
    options: PredictOptions,
    progress: Callable[[int, int], None] | None,
    model_rows: tuple[int, int] | None = None,
) -> None:
    """Blend windows row of windows by row of windows; hand finished rows to ``rows``.

    With ``model_rows`` only the windows touching those (model-resolution) rows run, and
    only those rows are handed on: the same windows, sums and rows as the whole scene's
    stream gives them, so that bands predicted apart assemble into the identical map.
    """
    height, width = reader.shape  # the plan's model_height, model_width
    th, tw = plan.window
    row_starts, col_starts = plan.starts()
    m0, m1 = model_rows or (0, height)
    todo = [i for i, r0 in enumerate(row_starts) if r0 < m1 and r0 + th > m0]
    weights = EdgeWeights((th, tw), (height, width), options.blend, plan.overlap)
    batch = options.batch_size or 1
    total, done = len(todo) * len(col_starts), 0
    acc = BlendAccumulator((th, width))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(reader.read, row_starts[todo[0]], th)
        for k, i in enumerate(todo):
            r0 = row_starts[i]
            band = pending.result()
            if k + 1 < len(todo):
                pending = pool.submit(reader.read, row_starts[todo[k + 1]], th)
            for b in range(0, len(col_starts), batch):
                cols = col_starts[b : b + batch]
                probs = predict(torch.stack([band.window(c, tw) for c in cols]))
                for j, p in enumerate(probs):
                    acc.add(p, weights.at(r0, col_starts[b + j]), (0, col_starts[b + j]))
                done += len(probs)
                if progress is not None:
                    progress(done, total)
            # rows above the next window row are final: no later window touches them
            n = (row_starts[i + 1] if i + 1 < len(row_starts) else height) - r0
            finished = acc.pop_rows(n).numpy()
            lo, hi = max(r0, m0), min(r0 + n, m1)
            if hi > lo:
                rows.put(lo, finished[:, lo - r0 : hi - r0])
        rows.close()


class EdgeWeights:
    """Blending weights of the windows of a scene, with an edge crop: the outer quarter
    of the overlap along a window side inside the scene gets no weight (a window's
    border pixels see the least context), so neighbours blend only over the rest of the
    overlap and seams stay invisible; sides on the scene's border keep their pixels.

    Args:
        window: (rows, columns) of every window.
        scene: (rows, columns) of the scene.
        blend: Blend mode (:func:`geounet.infer.sliding.blend_weights`).
        overlap: The windows' minimum overlap.
    """

    def __init__(
        self, window: tuple[int, int], scene: tuple[int, int], blend: str, overlap: int
    ) -> None:
        self.window, self.scene, self.blend = window, scene, blend
        self.edges = tuple(
            min(overlap, n - 1) // 4 if n < size else 0
            for n, size in zip(window, scene, strict=True)
        )
        self.cache: dict[tuple[bool, ...], torch.Tensor] = {}

    def at(self, row: int, col: int) -> torch.Tensor:
        """The weights of the window whose top left corner is at (row, col)."""
        key = (
            row == 0,
            row + self.window[0] >= self.scene[0],
            col == 0,
            col + self.window[1] >= self.scene[1],
        )
        if key not in self.cache:
            self.cache[key] = blend_weights(
                self.window, self.blend, edge=self.edges, keep=(key[:2], key[2:])
            )
        return self.cache[key]


def _mode(meta: ModelMeta) -> str:
    if meta.boundary:
        return "boundary"
    return "objects" if meta.objects else "binary" if meta.binary else "classes"


def _class_map_tags(meta: ModelMeta) -> dict[str, str]:
    """Extra class-map tags: the vector column naming the classes (e.g. crop_type), and
    the network settings of road models (vectorized as lines)."""
    field = (meta.labels or {}).get("class_field")
    tags = {CLASS_FIELD_TAG: field} if field else {}
    if meta.lines is not None:
        tags[LINES_TAG] = json.dumps(meta.lines)
    return tags


def check_dates(meta: ModelMeta, paths: Sequence[str | os.PathLike[str]]) -> None:
    """Check stacked inputs against the model: number of files, and their dates.

    Raises:
        DataError: A different number of files than the model stacks, or dates in the
            opposite order to training (swapped pre and post images).
    """
    if meta.stack == "bands":
        return
    if meta.timesteps > 1 and len(paths) != meta.timesteps:
        raise DataError(
            f"{paths[0]}: the model stacks {meta.timesteps} dates, got {len(paths)} files; "
            "pass one file per date, comma-separated, in the training order"
        )
    dates = [acquisition_date(p) for p in paths]
    trained = [d for d in (meta.dates or []) if d and all(d)]
    if not trained or not all(dates):
        return
    from datetime import date

    def days(values: list[str]) -> list[int]:
        return [date.fromisoformat(v).toordinal() for v in values]

    order = np.sign(np.diff(days(dates)))
    if all((np.sign(np.diff(days(t))) == -order).all() and order.any() for t in trained):
        raise DataError(
            f"{paths[0]}: dates {dates} run the other way than in training {trained[0]}; "
            "pass the files in the training order (earliest first)"
        )
    season = [date.fromisoformat(v).timetuple().tm_yday for v in dates]
    gaps = [
        max(
            _day_gap(a, date.fromisoformat(b).timetuple().tm_yday)
            for a, b in zip(season, t, strict=True)
        )
        for t in trained
        if len(t) == len(season)
    ]
    if gaps and min(gaps) > 45:
        log.warning(
            "%s: dates %s are %d+ days of the season away from the training dates %s; "
            "crops and vegetation look different then",
            paths[0],
            dates,
            min(gaps),
            trained[0],
        )


def _day_gap(a: int, b: int) -> int:
    gap = abs(a - b) % 365
    return min(gap, 365 - gap)


class SceneReader:
    """Rows of the scene at the model's resolution, masked values filled with the means."""

    def __init__(
        self, path: Path, info: RasterInfo, indexes: list[int], scale: float, fill: list[float]
    ) -> None:
        self.path, self.info, self.indexes, self.fill = path, info, indexes, fill
        self.per_band = len({info.nodatas[i - 1] for i in indexes}) > 1
        self.shape = (max(1, round(info.height / scale)), max(1, round(info.width / scale)))
        self.scale = scale

    def __enter__(self) -> SceneReader:
        self.src = open_raster(self.path)
        self.source = self.src
        if self.shape != self.info.shape:
            h, w = self.shape
            transform = self.info.transform * Affine.scale(
                self.info.width / w, self.info.height / h
            )
            self.source = WarpedVRT(
                self.src, transform=transform, width=w, height=h, resampling=Resampling.average
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.source is not self.src:
            self.source.close()
        self.src.close()

    def read(self, row: int, n: int) -> _Band:
        """Rows ``[row, row + n)`` at model resolution, in the raster's own dtype."""
        window = Window(0, row, self.shape[1], n)
        with read_errors(self.path, f"pixels of rows {row}-{row + n}"):
            data = self.source.read(self.indexes, window=window, masked=True)
        mask = np.ma.getmask(data)
        if mask is not np.ma.nomask and not self.per_band:
            # bands sharing one nodata value: missing only where all hold it (GDAL), so
            # a dark pixel with one band at 0 stays as it is
            mask = np.broadcast_to(mask.all(0, keepdims=True), mask.shape)
        return _Band(np.ma.getdata(data), None if mask is np.ma.nomask else mask, self.fill)

    def valid(self, row: int, n: int) -> np.ndarray:
        """Validity of full-resolution rows ``[row, row + n)`` (GDAL dataset mask)."""
        with read_errors(self.path, f"mask of rows {row}-{row + n}"):
            return self.src.dataset_mask(window=Window(0, row, self.info.width, n)) > 0


class _Band:
    """A band of rows kept in the raster's dtype (4x smaller than float32 for 8-bit
    imagery); windows become float32, masked values filled with the band means."""

    def __init__(self, data: np.ndarray, mask: np.ndarray | None, fill: list[float]) -> None:
        self.data, self.mask = data, mask
        self.fill = np.asarray(fill, dtype=np.float32)[:, None, None]

    @property
    def shape(self) -> tuple[int, ...]:
        """(C, n, width)."""
        return self.data.shape

    def window(self, col: int, width: int) -> torch.Tensor:
        """Columns ``[col, col + width)`` as float32 (C, n, width)."""
        values = self.data[:, :, col : col + width].astype(np.float32)
        if self.mask is not None:
            masked = self.mask[:, :, col : col + width]
            values = np.where(masked, self.fill, values)
        return torch.from_numpy(values)


class RowWriter:
    """Turns finished model-resolution probability rows into class rows on the scene grid.

    Runs the upsampling (when the model works at another resolution), thresholding and
    writing in a background thread so that the model never waits for them.
    """

    def __init__(
        self,
        writer: ClassMapWriter,
        reader: SceneReader,
        *,
        mode: str,
        nodata: int,
        counts: np.ndarray,
        threshold: float = 0.5,
        instances: InstanceStream | None = None,
        border_px: int = 1,
        rows: tuple[int, int] | None = None,
    ) -> None:
        self.writer, self.reader = writer, reader
        self.mode, self.nodata, self.counts = mode, nodata, counts
        self.threshold, self.instances = threshold, instances
        self.border_px = max(1, border_px)
        self.height, self.width = reader.info.shape
        self.model_height = reader.shape[0]
        self.buffer: np.ndarray | None = None  # model rows [self.top, self.top + len)
        self.next_row, self.stop = rows or (0, self.height)  # full-resolution rows to write
        self.top = model_rows(self.next_row, self.stop, self.model_height, self.height)[0]
        self.chunks: list[int] = []  # rows of each emitted chunk
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def put(self, row: int, probs: np.ndarray) -> None:
        """Queue model rows ``[row, row + n)`` of probabilities (K, n, width)."""
        if self.error is not None:
            raise self.error
        self.queue.put((row, probs))

    def close(self) -> None:
        """Flush everything and re-raise a writer error."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                self._add(*item)
        except BaseException as exc:  # surfaced in the main thread
            self.error = exc
            while self.queue.get() is not None:
                pass

    def _add(self, row: int, probs: np.ndarray) -> None:
        if self.model_height == self.height:
            self._emit(row, probs)
            return
        self.buffer = probs if self.buffer is None else np.concatenate([self.buffer, probs], 1)
        available = self.top + self.buffer.shape[1]
        ratio = self.model_height / self.height
        end = _emit_end(self.next_row, self.stop, available, self.model_height, self.height)
        if end == self.next_row:
            return
        ys = np.arange(self.next_row, end)
        c = np.clip((ys + 0.5) * ratio - 0.5, 0.0, self.model_height - 1)
        i0 = np.floor(c).astype(int)
        i1 = np.minimum(i0 + 1, self.model_height - 1)
        t = (c - i0).astype(np.float32)[None, :, None]
        rows = self.buffer[:, i0 - self.top] * (1 - t) + self.buffer[:, i1 - self.top] * t
        rows = F.interpolate(
            torch.from_numpy(np.ascontiguousarray(rows)), size=self.width, mode="linear"
        ).numpy()
        self._emit(self.next_row, rows)
        keep = int(_source_row(end, ratio))
        self.buffer = self.buffer[:, max(0, keep - self.top) :]
        self.top = max(self.top, keep)
        self.next_row = end

    def _emit(self, row: int, probs: np.ndarray) -> None:
        """Classes (and probabilities) for full-resolution rows starting at ``row``."""
        n = probs.shape[1]
        self.chunks.append(n)
        dtype = np.uint8 if self.nodata == 255 else np.uint16
        valid = self.reader.valid(row, n)
        if self.mode == "boundary":
            # K classes + boundary: objects are what is not background; each pixel of
            # one is of its most likely object class; the boundary splits neighbours
            objects = 1 - probs[0]
            if self.instances is not None:
                self.instances.put(np.stack([objects, probs[-1], probs[-1]]), valid)
            classes = (self._object_classes(probs) + 1).astype(dtype)
            classes[objects <= self.threshold] = 0
        elif self.instances is not None:
            self.instances.put(probs, valid)
        if self.mode == "classes":
            classes = probs.argmax(0).astype(dtype)
        elif self.mode != "boundary":
            # binary, or the footprint channel of an object model
            classes = (probs[0] > self.threshold).astype(dtype)
            if self.writer.prob_path is not None:
                probs = np.stack([1 - probs[0], probs[0]])
        self.counts += np.bincount(classes[valid], minlength=len(self.counts))
        classes[~valid] = self.nodata
        self.writer.write_rows(row, classes, probs if self.writer.prob_path else None)

    def _object_classes(self, probs: np.ndarray) -> np.ndarray:
        """Object class of each pixel (0-based among the object classes); on the
        boundary, where the class evidence is thin, the class of the object around it
        (class probabilities averaged over the boundary's width)."""
        crops = probs[1:-1]
        classes = crops.argmax(0)
        edge = probs[-1] > crops.max(0)
        if edge.any():
            size = 2 * self.border_px + 1
            spread = ndimage.uniform_filter(crops, size=(1, size, size), mode="nearest")
            classes[edge] = spread.argmax(0)[edge]
        return classes


def _source_row(row: float, ratio: float) -> float:
    """The model-resolution position (pixel centres aligned) of full-resolution ``row``."""
    return max((row + 0.5) * ratio - 0.5, 0.0)


def _emit_end(row: int, stop: int, available: int, model_height: int, height: int) -> int:
    """The full-resolution row up to which rows from ``row`` can be written once model rows
    ``[.., available)`` are final (each needs the two model rows it interpolates)."""
    final = available == model_height
    ratio = model_height / height
    end = row
    while end < stop:
        if not final and int(_source_row(end, ratio)) + 1 >= available:
            break
        end += 1
    return end


def model_rows(start: int, stop: int, model_height: int, height: int) -> tuple[int, int]:
    """The model-resolution rows that full-resolution rows ``[start, stop)`` are
    interpolated from."""
    if model_height == height:
        return start, stop
    ratio = model_height / height
    first = int(_source_row(start, ratio))
    last = min(int(_source_row(stop - 1, ratio)) + 1, model_height - 1)
    return min(first, model_height - 1), last + 1


def _check_bands(info: RasterInfo, meta: ModelMeta) -> list[int]:
    """The 1-based band indexes of the scene to feed the model."""
    if meta.band_indexes and info.count != meta.in_channels:
        indexes = list(meta.band_indexes)
        if max(indexes) > info.count:
            raise DataError(
                f"{info.path}: has {info.count} bands but the model reads bands {indexes}; "
                "give a scene with the same bands as the training images"
            )
    elif info.count == meta.in_channels:
        indexes = list(range(1, info.count + 1))
    else:
        hint = (
            f"; this model takes {meta.timesteps} co-registered dates stacked as channels: "
            "pass them together (comma-separated on the command line)"
            if meta.timesteps > 1
            else "; give a scene with the same bands as the training images"
        )
        raise DataError(
            f"{info.path}: has {info.count} bands but the model expects {meta.in_channels} "
            f"({', '.join(meta.bands)}){hint}"
        )
    named = [info.band_names[i - 1] for i in indexes]
    if all(not n.startswith("band_") for n in named) and named != list(meta.bands):
        log.warning("%s: band names %s differ from the model's %s", info.path, named, meta.bands)
    return indexes


def _scale(info: RasterInfo, meta: ModelMeta) -> float:
    """Factor by which to shrink the scene to reach the model's training resolution."""
    if not meta.ground_resolution_m:
        return 1.0
    scale = meta.ground_resolution_m / info.ground_resolution
    return 1.0 if abs(scale - 1.0) < 0.05 else scale
