"""One scene predicted in row bands, apart (by several workers), and assembled.

A band is predicted exactly as the whole-scene stream predicts those rows: the same
windows (with the blending halo above and below it), the same sums, the same rows handed
on in the same chunks. Band edges are placed on the stream's chunk boundaries, so the
assembled class map, probabilities and instance map are identical, pixel for pixel, to
one process's output.

Each band writes part files (class ids, uint8 probabilities, and for object models the
float32 object channels the instance splitter needs) into a parts folder; their
``GEOUNET_PART`` tag records the job signature, class pixel counts and row chunks, and is
what makes a band "finished" for a rerun. :func:`assemble_bands` streams the parts into
the final COGs and runs the instance splitter over the whole height.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from geounet.errors import DataError
from geounet.infer.scene import (
    PredictOptions,
    PredictResult,
    ScenePlan,
    _emit_end,
    finish_outputs,
    open_outputs,
    plan_scene,
    scene_predictor,
    scene_result,
    stream_scene,
)
from geounet.io.atomic import atomic_output
from geounet.io.raster import open_raster
from geounet.io.write import ClassMapWriter, quantize
from geounet.models.bundle import ModelMeta
from geounet.models.segmenter import Segmenter

PART_TAG = "GEOUNET_PART"
OBJECT_CHANNELS = 3  # footprint, border, contact: what the instance splitter reads


@dataclass(frozen=True)
class Band:
    """Full-resolution rows ``[start, stop)`` of a scene, and where their parts go."""

    start: int
    stop: int
    folder: Path

    @property
    def classes(self) -> Path:
        """The part of the class map (written last: its tag marks the band finished)."""
        return self.folder / f"rows_{self.start:08d}_{self.stop:08d}.tif"

    @property
    def probabilities(self) -> Path:
        """The part of the probability raster."""
        return self.classes.with_name(self.classes.stem + "_proba.tif")

    @property
    def objects(self) -> Path:
        """The part of the object channels (float32) for the instance splitter."""
        return self.classes.with_name(self.classes.stem + "_objects.tif")


def chunk_ends(plan: ScenePlan) -> list[int]:
    """The full-resolution rows at which the whole-scene stream ends each chunk it
    writes (the last is the scene height)."""
    mh, height = plan.model_height, plan.info.height
    starts, _ = plan.starts()
    ends, row = [], 0
    for i in range(len(starts)):
        available = starts[i + 1] if i + 1 < len(starts) else mh
        end = available if mh == height else _emit_end(row, height, available, mh, height)
        if end > row:
            ends.append(end)
            row = end
    return ends


def scene_bands(plan: ScenePlan, rows: int, folder: Path) -> list[Band]:
    """Bands of about ``rows`` full-resolution rows each (at least one), their edges on
    the stream's chunk boundaries."""
    edges, last = [0], 0
    for end in chunk_ends(plan):
        if end - last >= rows:
            edges.append(end)
            last = end
    if edges[-1] != plan.info.height:
        if len(edges) > 1 and plan.info.height - edges[-1] < rows // 2:
            edges[-1] = plan.info.height  # a short last band joins the one before
        else:
            edges.append(plan.info.height)
    return [Band(a, b, folder) for a, b in itertools.pairwise(edges)]


def part_record(band: Band) -> dict | None:
    """The finished band's record (job, class pixels, chunks), or None when unfinished."""
    if not band.classes.exists():
        return None
    try:
        with rasterio.open(band.classes) as src:
            tag = src.tags().get(PART_TAG)
    except rasterio.errors.RasterioIOError:
        return None
    return json.loads(tag) if tag else None


def predict_band(
    model: Segmenter,
    meta: ModelMeta,
    scene: str | os.PathLike[str],
    band: Band,
    options: PredictOptions,
    job: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Predict one band of ``scene`` into its part files.

    ``options.probabilities`` / ``options.instances`` (any value) ask for the parts of
    the probability raster and of the object channels.

    Returns:
        The band's record: ``job``, ``class_pixels`` and the ``chunks`` it wrote.
    """
    plan = plan_scene(meta, scene, options)
    predict, options = scene_predictor(model, meta, plan, options, (band.start, band.stop))
    counts = np.zeros(len(meta.classes), dtype=np.int64)
    k = len(meta.classes) + 1 if meta.boundary else len(meta.classes)  # probability bands
    with contextlib.ExitStack() as stack:
        # entered first, closed (renamed into place) last: its tag marks the band finished
        writer = stack.enter_context(_PartWriter(band, plan, k, options.probabilities is not None))
        objects = None
        if meta.objects is not None and options.instances is not None:
            objects = stack.enter_context(_ObjectsPart(band, plan))
        rows = stream_scene(
            predict, meta, scene, plan, options, writer, objects, counts, progress,
            rows=(band.start, band.stop),
        )  # fmt: skip
        record = {"job": job, "class_pixels": counts.tolist(), "chunks": rows.chunks}
        writer.tag(record)
    return record


def assemble_bands(
    meta: ModelMeta,
    scene: str | os.PathLike[str],
    bands: Sequence[Band],
    out: str | os.PathLike[str],
    options: PredictOptions,
) -> PredictResult:
    """Stream finished band parts into the scene's class map (and probability and
    instance maps), as :func:`~geounet.infer.scene.predict_scene` writes them.

    Raises:
        DataError: A band is missing or belongs to another job.
    """
    start = time.perf_counter()
    plan = plan_scene(meta, scene, options)
    records = []
    for band in bands:
        record = part_record(band)
        if record is None or (options.job is not None and record["job"] != options.job):
            raise DataError(f"{band.classes}: band missing or from another run; predict again")
        records.append(record)
    counts = np.sum([r["class_pixels"] for r in records], axis=0).astype(np.int64)
    with contextlib.ExitStack() as stack:
        writer, instances = open_outputs(stack, meta, plan, out, options)
        src = stack.enter_context(open_raster(scene))
        for band, record in zip(bands, records, strict=True):
            _copy_band(band, record, writer, instances, src)
        finish_outputs(writer, options, counts, instances)
    return scene_result(meta, out, counts, plan.scale, start, options, instances)


def _copy_band(band: Band, record: dict, writer: ClassMapWriter, instances, src) -> None:
    """One band's parts into the writers, in the chunks the band was written in."""
    with contextlib.ExitStack() as stack:
        classes = stack.enter_context(rasterio.open(band.classes))
        proba = None
        if writer.prob_path is not None:
            proba = stack.enter_context(rasterio.open(band.probabilities))
        objects = stack.enter_context(rasterio.open(band.objects)) if instances else None
        offset = 0
        for n in record["chunks"]:
            window = Window(0, offset, classes.width, n)
            row = band.start + offset
            probs = proba.read(window=window) if proba is not None else None
            writer.write_rows(row, classes.read(1, window=window), probs)
            if instances is not None:
                valid = src.dataset_mask(window=Window(0, row, src.width, n)) > 0
                instances.put(objects.read(window=window), valid)
            offset += n


class _PartWriter:
    """A band's class ids (and uint8 probabilities) as tiled GeoTIFF parts, atomically."""

    def __init__(self, band: Band, plan: ScenePlan, k: int, probabilities: bool) -> None:
        self.band, self.plan, self.k = band, plan, k
        self.prob_path = band.probabilities if probabilities else None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _PartWriter:
        stack = self._stack.__enter__()
        dtype = "uint8" if self.plan.nodata == 255 else "uint16"
        tmp = stack.enter_context(atomic_output(self.band.classes, translate=False))
        self._dst = stack.enter_context(
            rasterio.open(
                tmp, "w", **_part_profile(self.plan, self.band, 1, dtype, self.plan.nodata)
            )
        )
        self._prob = None
        if self.prob_path is not None:
            tmp = stack.enter_context(atomic_output(self.prob_path, translate=False))
            profile = _part_profile(self.plan, self.band, self.k, "uint8", None)
            self._prob = stack.enter_context(rasterio.open(tmp, "w", **profile))
        return self

    def write_rows(self, row: int, classes: np.ndarray, probs: np.ndarray | None = None) -> None:
        """Rows of the band at absolute full-resolution ``row``."""
        window = Window(0, row - self.band.start, classes.shape[1], classes.shape[0])
        self._dst.write(classes, 1, window=window)
        if self._prob is not None and probs is not None:
            self._prob.write(quantize(probs), window=window)

    def tag(self, record: dict) -> None:
        """Record the finished band (job, class pixels, chunks) in the class part."""
        self._dst.update_tags(**{PART_TAG: json.dumps(record)})

    def __exit__(self, *exc: object) -> bool | None:
        return self._stack.__exit__(*exc)


class _ObjectsPart:
    """Records the rows the instance splitter is given, as float32 band parts."""

    def __init__(self, band: Band, plan: ScenePlan) -> None:
        self.band, self.plan = band, plan
        self.row = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _ObjectsPart:
        stack = self._stack.__enter__()
        tmp = stack.enter_context(atomic_output(self.band.objects, translate=False))
        profile = _part_profile(self.plan, self.band, OBJECT_CHANNELS, "float32", None)
        self._dst = stack.enter_context(rasterio.open(tmp, "w", **profile))
        return self

    def put(self, probs: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Rows in the stream's order (the validity mask is re-read on assembly)."""
        n = probs.shape[1]
        window = Window(0, self.row, probs.shape[2], n)
        self._dst.write(np.asarray(probs[:OBJECT_CHANNELS], dtype=np.float32), window=window)
        self.row += n

    def __exit__(self, *exc: object) -> bool | None:
        return self._stack.__exit__(*exc)


def _part_profile(plan: ScenePlan, band: Band, count: int, dtype: str, nodata) -> dict:
    info = plan.info
    return {
        "driver": "GTiff",
        "width": info.width,
        "height": band.stop - band.start,
        "count": count,
        "dtype": dtype,
        "crs": info.crs,
        "transform": info.transform * Affine.translation(0, band.start),
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "DEFLATE",
        "zlevel": 1,
        "predictor": 3 if dtype == "float32" else 1,
        "BIGTIFF": "IF_SAFER",
    }
