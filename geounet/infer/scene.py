"""Scene-level prediction: a GeoTIFF in, a class map on exactly its grid out."""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rasterio.windows import Window

from geounet.errors import DataError
from geounet.infer.sliding import sliding_window_predict
from geounet.io.raster import RasterInfo, open_raster, raster_info, read_window
from geounet.io.stack import stack_rasters
from geounet.io.write import write_class_map
from geounet.models.bundle import ModelMeta
from geounet.models.segmenter import Segmenter
from geounet.runtime import autocast_dtype, select_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictOptions:
    """How to run a model over a scene."""

    tile: int | None = None
    overlap: int | None = None
    batch_size: int = 4
    device: str = "auto"
    precision: str = "auto"
    resample: bool = True
    blend: str = "cosine"


@dataclass(frozen=True)
class PredictResult:
    """A written class map and how it was made."""

    path: Path
    class_pixels: dict[str, int]
    scale: float
    seconds: float


def predict_scene(
    model: Segmenter,
    meta: ModelMeta,
    scene: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: PredictOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PredictResult:
    """Segment a whole scene and write the class map on the scene's grid.

    Args:
        model: The trained model.
        meta: Its bundle metadata (bands, classes, resolution, tile size).
        scene: Input GeoTIFF, or a list of co-registered rasters (pre/post, dates) that
            are stacked as channels as in training.
        out: Output class-map GeoTIFF (COG, written atomically).
        options: Tile, overlap, batch size, device, precision, resampling.
        progress: Called as ``progress(done, total)`` over windows.

    Returns:
        A :class:`PredictResult`.
    """
    if not isinstance(scene, str | os.PathLike):
        with tempfile.TemporaryDirectory() as tmp:
            stacked = stack_rasters(scene, Path(tmp) / "stack.vrt")
            return predict_scene(model, meta, stacked, out, options, progress)
    start = time.perf_counter()
    options = options or PredictOptions()
    info = raster_info(scene)
    indexes = _check_bands(info, meta)
    scale = _scale(info, meta) if options.resample else 1.0
    height, width = info.shape
    shape = (max(1, round(height / scale)), max(1, round(width / scale)))
    with open_raster(scene) as src:
        # nodata reads as the band mean: neutral after normalization
        data, _ = read_window(
            src,
            Window(0, 0, width, height),
            indexes=indexes,
            out_shape=None if shape == info.shape else shape,
            fill=meta.mean,
        )
        valid = src.dataset_mask() > 0
    if scale != 1.0:
        log.info("resampling %s by 1/%.3g to the model's resolution", info.path.name, scale)

    device = select_device(options.device)
    dtype = autocast_dtype(device, options.precision)
    model = model.to(device).eval().use_channels_last()
    binary = meta.out_channels == 1

    def predict(batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(batch.to(device))
        return torch.sigmoid(logits.float()) if binary else logits.float().softmax(1)

    tile = options.tile or max(meta.tile_size, 512)
    overlap = options.overlap if options.overlap is not None else tile // 8
    tiles = (min(tile, shape[0]), min(tile, shape[1]))
    probs = sliding_window_predict(
        torch.from_numpy(data),
        predict,
        tile=tiles,
        overlap=[min(overlap, t - 1) for t in tiles],
        batch_size=options.batch_size,
        blend=options.blend,
        progress=progress,
    )
    if probs.shape[1:] != info.shape:
        probs = F.interpolate(probs[None], size=info.shape, mode="bilinear", align_corners=False)[0]
    classes = (probs[0] > 0.5).long() if binary else probs.argmax(0)
    classes = classes.numpy()
    nodata = 255 if len(meta.classes) < 255 else 65535
    classes = np.where(valid, classes, nodata)
    write_class_map(out, classes, info, class_names=meta.classes, colors=meta.colors, nodata=nodata)
    counts = np.bincount(classes[valid].ravel(), minlength=len(meta.classes))
    return PredictResult(
        path=Path(out),
        class_pixels={name: int(n) for name, n in zip(meta.classes, counts, strict=False)},
        scale=scale,
        seconds=time.perf_counter() - start,
    )


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
        warnings.warn(
            f"{info.path}: band names {named} differ from the model's {meta.bands}",
            stacklevel=2,
        )
    return indexes


def _scale(info: RasterInfo, meta: ModelMeta) -> float:
    """Factor by which to shrink the scene to reach the model's training resolution."""
    if not meta.ground_resolution_m:
        return 1.0
    scale = meta.ground_resolution_m / info.ground_resolution
    return 1.0 if abs(scale - 1.0) < 0.05 else scale
