"""Evaluate a model on labelled imagery: metrics.json, a Markdown report and figures.

Two ways to pick the data: an image plus labels (the labelled area is where the image
and the labels' extent overlap), or a training config, whose test strips (validation
strips when it has none) are rebuilt exactly as in training. Scenes are predicted whole,
so every evaluated pixel has its full context, and scored only inside the region.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
import rasterio.warp
import rasterio.windows
import shapely
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from geounet.data.datasets import is_raster
from geounet.errors import DataError
from geounet.infer.scene import PredictOptions, predict_scene
from geounet.io.atomic import atomic_output
from geounet.io.labels import rasterize_labels, read_labels
from geounet.io.raster import raster_info
from geounet.models.bundle import ModelMeta, load_bundle
from geounet.train.metrics import ConfusionMatrix, hausdorff_distance

if TYPE_CHECKING:  # configuration is read by geounet.api
    from geounet.config import Config

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Region:
    """A scene and the pixel window of it to score."""

    scene: Path
    window: rasterio.windows.Window


@dataclass(frozen=True)
class EvalResult:
    """Paths of the written report and the headline figures."""

    metrics: dict[str, Any]
    metrics_path: Path
    report_path: Path
    figures: list[Path]


def evaluate(
    model: PathLike,
    out_dir: PathLike,
    *,
    image: PathLike | None = None,
    labels: PathLike | None = None,
    config: Config | None = None,
    label_attribute: str | None = None,
    options: PredictOptions | None = None,
    n_windows: int = 4,
    min_object_m2: float | None = None,
) -> EvalResult:
    """Score ``model`` on labelled imagery and write metrics, report and figures.

    Args:
        model: A ``.safetensors`` bundle.
        out_dir: Directory for ``metrics.json``, ``report.md`` and PNG figures.
        image: A scene to evaluate on (with ``labels``).
        labels: Vector labels or a mask raster for ``image``.
        config: Alternatively, a training config: its test (else validation) strips.
        label_attribute: Vector attribute holding the class (name or id).
        options: Prediction options (tile, device, precision).
        n_windows: Number of example windows in the figure.
        min_object_m2: Object scores drop polygons under this area in m² (default: under
            20 pixels, the SpaceNet rule).

    Returns:
        An :class:`EvalResult`.
    """
    net, meta = load_bundle(model)
    if config is not None:
        regions, labels, label_attribute = _config_regions(config)
    elif image is not None and labels is not None:
        regions = [_labelled_region(Path(image), Path(labels))]
    else:
        raise DataError("evaluate needs IMAGE and --labels, or --config CONFIG")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    confusion = ConfusionMatrix(len(meta.classes))
    preds, truths, pixels, samples, objects = [], [], [], [], []
    options = options or PredictOptions()
    with tempfile.TemporaryDirectory() as tmp:
        for i, region in enumerate(regions):
            mask_path = Path(tmp) / f"pred_{i}.tif"
            inst_path = Path(tmp) / f"instances_{i}.tif" if meta.objects else None
            predict_scene(
                net,
                meta,
                region.scene,
                mask_path,
                dataclasses.replace(options, instances=inst_path),
            )
            pred, truth, rgb, res = _read_region(region, mask_path, labels, label_attribute, meta)
            valid = pred != 255
            confusion.update(pred[valid], truth[valid])
            preds.append(pred)
            truths.append(truth)
            pixels.append(res)
            objects.append(
                _region_objects(region, pred, truth, inst_path, labels, label_attribute, meta)
            )
            samples.extend(_example_windows(rgb, truth, pred, n_windows))
            if i == 0:
                first_rgb = rgb
    metrics = confusion.scores(meta.classes)
    metrics["regions"] = len(regions)
    metrics["boundary"] = _boundary_metrics(preds, truths, pixels, meta)
    metrics["objects"] = _object_metrics(objects, pixels, meta, min_object_m2)
    metrics_path = out / "metrics.json"
    with atomic_output(metrics_path) as tmp_path:
        tmp_path.write_text(json.dumps(metrics, indent=2, allow_nan=True))
    from geounet.report import (
        objects_figure,
        training_curves_figure,
        windows_figure,
        write_report,
    )

    figures = [windows_figure(samples[:n_windows], meta, out / "windows.png")]
    if len(meta.classes) == 2:  # predicted and true objects of the first region
        pred_polys, true_polys = objects[0][meta.classes[1]]
        figures.append(objects_figure(first_rgb, pred_polys, true_polys, out / "objects.png"))
    curves = Path(model).with_name("metrics.csv")
    if curves.exists():
        figures.append(training_curves_figure(curves, out / "training_curves.png"))
    report = write_report(metrics, meta, figures, out / "report.md", model=Path(model))
    return EvalResult(metrics, metrics_path, report, figures)


def _labelled_region(image: Path, labels: Path) -> Region:
    """The window of ``image`` covered by the labels' extent."""
    info = raster_info(image)
    if is_raster(labels):
        with rasterio.open(labels) as src:
            bounds = rasterio.warp.transform_bounds(src.crs, info.crs, *src.bounds)
    else:
        bounds = tuple(read_labels(labels, crs=info.crs).total_bounds)
    window = rasterio.windows.from_bounds(*bounds, transform=info.transform)
    full = rasterio.windows.Window(0, 0, info.width, info.height)
    try:
        window = window.intersection(full).round_offsets().round_lengths()
    except rasterio.errors.WindowError as exc:
        raise DataError(f"{labels}: labels do not overlap {image}") from exc
    return Region(image, window)


def _config_regions(config: Config) -> tuple[list[Region], str, str | None]:
    """Test (else validation) strips of a config, as windows of their scenes."""
    from geounet.train.fit import prepare

    prepared = prepare(config, Path(config.run_dir))
    strips = prepared.split.test or prepared.split.val
    index = prepared.dataset.index
    regions = []
    for row, strip in zip(index.itertuples(), strips, strict=True):
        scene = Path(prepared.sources.get(row.filepath_1, row.filepath_1))
        info = raster_info(scene)
        bounds = rasterio.warp.transform_bounds(prepared.dataset.crs, info.crs, *strip.bounds)
        window = rasterio.windows.from_bounds(*bounds, transform=info.transform)
        regions.append(Region(scene, window.round_offsets().round_lengths()))
    return regions, config.data.labels, config.data.label_attribute


def _read_region(
    region: Region,
    mask_path: Path,
    labels: PathLike,
    attribute: str | None,
    meta: ModelMeta,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """Prediction, truth and a display image of the region, and its pixel size in metres."""
    info = raster_info(region.scene)
    win = region.window
    transform = rasterio.windows.transform(win, info.transform)
    shape = (int(win.height), int(win.width))
    with rasterio.open(mask_path) as src:
        pred = src.read(1, window=win)
    if is_raster(labels):
        truth = _read_region_truth(region, labels, meta)
    else:
        gdf = read_labels(labels, crs=info.crs, class_attribute=attribute, class_names=meta.classes)
        truth = rasterize_labels(gdf, shape, transform)
    with rasterio.open(region.scene) as src:
        bands = [1, 2, 3] if src.count >= 3 else [1]
        rgb = src.read(bands, window=win).astype(np.float32)
    metres = info.ground_resolution
    return pred, truth.astype(np.int64), rgb, (metres, metres)


def _boundary_metrics(preds, truths, pixels, meta: ModelMeta) -> dict[str, Any]:
    """HD and HD95 per foreground class, in pixels and metres (worst region reported)."""
    result: dict[str, Any] = {}
    for class_id, name in enumerate(meta.classes):
        if class_id == 0:
            continue
        values: dict[str, float] = {}
        for pred, truth, spacing in zip(preds, truths, pixels, strict=True):
            p, t = pred == class_id, truth == class_id
            for key, kwargs in (
                ("hd_px", {}),
                ("hd95_px", {"percentile": 95}),
                ("hd_m", {"spacing": spacing}),
                ("hd95_m", {"spacing": spacing, "percentile": 95}),
            ):
                values[key] = max(values.get(key, 0.0), hausdorff_distance(p, t, **kwargs))
        result[name] = values
    return result


def _region_objects(
    region: Region,
    pred: np.ndarray,
    truth: np.ndarray,
    instances: Path | None,
    labels: PathLike,
    attribute: str | None,
    meta: ModelMeta,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Predicted and true polygons per foreground class, in the region's pixel space.

    Predictions are the objects of the instance map (object models) or the connected
    regions of the class map; truths the label polygons clipped to the region (or the
    connected regions of a label raster).
    """
    info = raster_info(region.scene)
    win = region.window
    shape = (int(win.height), int(win.width))
    if instances is not None:
        with rasterio.open(instances) as src:
            ids = src.read(1, window=win)
        pred_polys = _pixel_polygons(ids, instances=True)
    else:
        pred_polys = _pixel_polygons(np.where(pred == 255, 0, pred))
    if is_raster(labels):
        true_polys = _pixel_polygons(truth)
    else:
        gdf = read_labels(labels, crs=info.crs, class_attribute=attribute, class_names=meta.classes)
        transform = rasterio.windows.transform(win, info.transform)
        box = shapely.box(0, 0, shape[1], shape[0])
        inverse = ~transform
        matrix = np.array([[inverse.a, inverse.d], [inverse.b, inverse.e]])
        offset = np.array([inverse.c, inverse.f])
        geoms = shapely.transform(
            np.asarray(gdf.geometry.values, dtype=object), lambda xy: xy @ matrix + offset
        )
        geoms = shapely.intersection(geoms, box)
        inside = ~shapely.is_empty(geoms)
        geoms, class_ids = geoms[inside], gdf["class_id"].to_numpy()[inside]
        true_polys = {int(c): geoms[class_ids == c] for c in np.unique(class_ids)}
    result = {}
    for class_id, name in enumerate(meta.classes):
        if class_id:
            result[name] = (pred_polys.get(class_id, _NONE), true_polys.get(class_id, _NONE))
    return result


_NONE = np.zeros(0, dtype=object)


def _pixel_polygons(values: np.ndarray, instances: bool = False) -> dict:
    """Polygons of a class map (or instance map) in pixel coordinates, by class id."""
    from geounet.vectorize.polygons import array_source, polygonize_source

    regions = polygonize_source(array_source(values), None, instances=instances)
    ids = np.asarray(regions.class_ids, dtype=np.int64)
    geoms = np.asarray(regions.geoms, dtype=object)
    return {int(c): geoms[ids == c] for c in np.unique(ids)}


def _read_region_truth(region: Region, labels: PathLike, meta: ModelMeta) -> np.ndarray:
    info = raster_info(region.scene)
    with (
        rasterio.open(labels) as src,
        WarpedVRT(
            src,
            crs=info.crs,
            transform=info.transform,
            width=info.width,
            height=info.height,
            resampling=Resampling.nearest,
        ) as vrt,
    ):
        truth = vrt.read(1, window=region.window)
    if len(meta.classes) == 2:
        truth = (truth > 0).astype(np.uint8)
    return truth


def _object_metrics(
    objects: list[dict], pixels: list[tuple[float, float]], meta: ModelMeta, min_m2: float | None
) -> dict[str, Any]:
    """Polygon object scores per foreground class (SpaceNet rule), over all regions."""
    from geounet.vectorize.score import SPACENET_MIN_PX, score_polygons

    result: dict[str, Any] = {}
    keys = ("tp", "fp", "fn", "n_pred", "n_true", "merges", "merged_true", "splits")
    for class_id, name in enumerate(meta.classes):
        if class_id == 0:
            continue
        totals = dict.fromkeys((*keys, "split_pieces"), 0)
        ious = []
        for region, (mx, my) in zip(objects, pixels, strict=True):
            pred, truth = region[name]
            min_px = SPACENET_MIN_PX if min_m2 is None else min_m2 / (mx * my)
            scores = score_polygons(pred, truth, min_area=min_px)
            for key in totals:
                totals[key] += getattr(scores, key)
            ious.extend([scores.mean_iou] * scores.tp)
        tp, n_pred, n_true = totals["tp"], totals["n_pred"], totals["n_true"]
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[name] = {
            **totals,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "mean_iou": float(np.mean(ious)) if ious else 0.0,
            "rule": "one-to-one matches at IoU > 0.5; polygons under "
            + (f"{min_m2:g} m2" if min_m2 is not None else f"{SPACENET_MIN_PX:g} px")
            + " dropped",
            "instances": meta.objects is not None,
        }
    return result


def _example_windows(rgb, truth, pred, n: int, size: int = 256) -> list[tuple]:
    """Up to ``n`` windows of the region with the most foreground, for the figure."""
    h, w = truth.shape
    size = min(size, h, w)
    candidates = []
    for r in range(0, max(1, h - size + 1), size):
        for c in range(0, max(1, w - size + 1), size):
            sl = (slice(r, r + size), slice(c, c + size))
            candidates.append((float((truth[sl] > 0).mean()), sl))
    candidates.sort(key=lambda t: -t[0])
    return [(rgb[(slice(None), *sl)], truth[sl], pred[sl]) for _, sl in candidates[:n]]
