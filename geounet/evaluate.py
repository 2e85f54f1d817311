"""Evaluate a model on labelled imagery: metrics.json, a Markdown report and figures.

Two ways to pick the data: an image plus labels (the labelled area is where the image
and the labels' extent overlap), or a training config, whose test strips (validation
strips when it has none) are rebuilt exactly as in training. Scenes are predicted whole,
so every evaluated pixel has its full context, and scored only inside the region.
"""

from __future__ import annotations

import dataclasses
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
from geounet.io.atomic import write_json
from geounet.io.labelmap import IGNORE, LabelSpec
from geounet.io.labels import rasterize_labels, read_labels
from geounet.io.raster import raster_info
from geounet.io.xbd import DAMAGE_CLASSES
from geounet.models.bundle import ModelMeta, load_bundle
from geounet.train.metrics import (
    ConfusionMatrix,
    foreground_scores,
    hausdorff_distance,
    xview2_scores,
)

if TYPE_CHECKING:  # configuration is read by geounet.api
    from geounet.config import Config

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Region:
    """A scene, the pixel window of it to score, and the labels of that scene."""

    scene: Path
    window: rasterio.windows.Window
    labels: Path | None = None


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
            With ``labels`` too, those strips are scored against ``labels`` instead of
            the config's own (a model trained on sparse labels, scored on dense ones).
        label_attribute: Vector attribute holding the class (default: the one the
            model was trained with); values map to classes as in training.
        options: Prediction options (tile, device, precision).
        n_windows: Number of example windows in the figure.
        min_object_m2: Object scores drop polygons under this area in m² (default: under
            20 pixels, the SpaceNet rule).

    Returns:
        An :class:`EvalResult`.
    """
    net, meta = load_bundle(model)
    options = options or PredictOptions()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if config is not None:
            regions, attribute = _config_regions(config)
            if labels is not None:  # the config's strips, scored against other labels
                regions = [dataclasses.replace(r, labels=Path(labels)) for r in regions]
            truth = TruthSpec.of(meta, label_attribute or attribute)
        elif image is not None and labels is not None:
            truth = TruthSpec.of(meta, label_attribute)
            regions = [_labelled_region(_scene_input(image, meta, tmp), Path(labels), truth)]
        else:
            raise DataError("evaluate needs IMAGE and --labels, or --config CONFIG")
        scored = _score_regions(net, meta, regions, truth, options, tmp, n_windows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = scored.confusion.scores(meta.classes)
    metrics["regions"] = len(regions)
    metrics["present_classes"] = [n for n in meta.classes if metrics[n]["iou"] is not None]
    metrics["boundary"] = _boundary_metrics(scored.preds, scored.truths, scored.pixels, meta)
    if is_damage_model(meta):
        metrics["xview2"] = xview2_scores(metrics["confusion_matrix"])
        if scored.voted is not None:  # the building polygons: one damage class each
            metrics["xview2_buildings"] = xview2_scores(scored.voted.matrix.numpy())
    if meta.lines is not None:  # networks, not objects
        metrics["objects"] = {}
        metrics["roads"] = _road_metrics(scored, meta, metrics)
    else:
        metrics["objects"] = _object_metrics(scored.objects, scored.pixels, meta, min_object_m2)
    if meta.boundary:  # fields: any object class against background, as Fields of the World
        pixel_iou = foreground_scores(metrics["confusion_matrix"])["iou"]
        for record in metrics["objects"].values():
            record["pixel_iou"] = pixel_iou
    metrics_path = out / "metrics.json"
    write_json(metrics, metrics_path)
    from geounet.report import (
        confusion_figure,
        objects_figure,
        training_curves_figure,
        windows_figure,
        write_report,
    )

    figures = [windows_figure(scored.samples[:n_windows], meta, out / "windows.png")]
    if len(meta.classes) > 2:
        figures.append(
            confusion_figure(metrics["confusion_matrix"], meta.classes, out / "confusion.png")
        )
    if metrics.get("roads") and scored.road_lines:
        from geounet.report import network_figure

        roads = metrics["roads"]
        figures.append(
            network_figure(
                scored.first_image,
                *scored.road_lines,
                out / "network.png",
                f"APLS {roads['apls'] or 0:.3f}, completeness {roads['completeness'] or 0:.3f}, "
                f"correctness {roads['correctness'] or 0:.3f} (all regions)",
            )
        )
    if scored.objects[0] and meta.lines is None:  # the first region's objects, as scored
        from geounet.vectorize.score import scored_polygons

        min_px = _min_object_px(scored.pixels[0], min_object_m2)
        pred_polys, true_polys = (
            scored_polygons(polys, min_px) for polys in next(iter(scored.objects[0].values()))
        )
        title = "first region: " if len(scored.objects) > 1 else ""
        figures.append(
            objects_figure(scored.first_image, pred_polys, true_polys, out / "objects.png", title)
        )
    curves = Path(model).with_name("metrics.csv")
    if curves.exists():
        figures.append(training_curves_figure(curves, out / "training_curves.png"))
    report = write_report(metrics, meta, figures, out / "report.md", model=Path(model))
    return EvalResult(metrics, metrics_path, report, figures)


def is_damage_model(meta: ModelMeta) -> bool:
    """True for models of the xView2 damage classes (background and the four grades)."""
    return list(meta.classes) == ["background", *DAMAGE_CLASSES]


def majority_map(instances: np.ndarray, classes: np.ndarray, n: int) -> np.ndarray:
    """Each object of an instance map given its most frequent class of ``classes`` (but
    background, as the vectorized objects take it); pixels outside objects are
    background."""
    from geounet.vectorize.pipeline import majority_classes

    ids = instances.astype(np.int64)
    values = np.where((classes >= 0) & (classes < n), classes, 0).astype(np.int64)
    counts = np.bincount((ids * n + values).ravel(), minlength=(ids.max() + 1) * n)
    majority, _ = majority_classes(counts.reshape(-1, n), ids.max() + 1)
    majority[0] = 0
    return majority[ids]


def _road_metrics(scored: _Scored, meta: ModelMeta, metrics: dict) -> dict[str, Any]:
    """Road IoU and F1 (pixels of every road class), completeness / correctness /
    quality and APLS of the networks, over all regions."""
    from geounet.vectorize.network_score import RoadScores

    roads = RoadScores(meta.lines)
    for pred, truth, (metres, _) in zip(scored.preds, scored.truths, scored.pixels, strict=True):
        labelled = truth != IGNORE
        roads.add((pred > 0) & (pred != 255) & labelled, (truth > 0) & labelled, metres)
    scored.road_lines = roads.lines[0] if roads.lines else None
    return road_summary(metrics["confusion_matrix"], roads.result())


def road_summary(confusion: list[list[int]], network: dict[str, Any]) -> dict[str, Any]:
    """Road IoU and F1 (any road class against background) beside the network scores."""
    return {**foreground_scores(confusion), **network}


def _scene_input(image: PathLike | list, meta: ModelMeta, tmp: Path) -> Path:
    """The scene to evaluate: a raster, or band files / dates (a list or comma-joined)
    stacked as in training."""
    from geounet.io.stack import stack_rasters, uniform_scene

    parts = image if isinstance(image, list | tuple) else str(image).split(",")
    if len(parts) == 1:  # a VRT of bands of different types is read through one type
        return uniform_scene(parts[0], tmp / "uniform.vrt")
    return stack_rasters(parts, tmp / "stack.vrt", kind=meta.stack or "dates")


@dataclass
class _Scored:
    """What scoring the regions gathered."""

    confusion: ConfusionMatrix
    preds: list[np.ndarray]
    truths: list[np.ndarray]
    pixels: list[tuple[float, float]]
    samples: list[tuple]
    objects: list[dict]
    first_image: np.ndarray | None = None
    voted: ConfusionMatrix | None = None  # object models: each object's majority class
    road_lines: tuple[list, list] | None = None  # road models: first region's networks


def _score_regions(
    net: Any,
    meta: ModelMeta,
    regions: list[Region],
    truth_spec: TruthSpec,
    options: PredictOptions,
    tmp: Path,
    n_windows: int,
) -> _Scored:
    """Predict every region whole (full context) and gather what the scores need."""
    scored = _Scored(ConfusionMatrix(len(meta.classes)), [], [], [], [], [])
    if meta.boundary:
        scored.voted = ConfusionMatrix(len(meta.classes))
    for i, region in enumerate(regions):
        mask_path = tmp / f"pred_{i}.tif"
        inst_path = tmp / f"instances_{i}.tif" if meta.objects else None
        predict_scene(
            net, meta, region.scene, mask_path, dataclasses.replace(options, instances=inst_path)
        )
        pred, truth, rgb, res = _read_region(region, mask_path, truth_spec, meta)
        valid = (pred != 255) & (truth != IGNORE)
        scored.confusion.update(pred[valid], truth[valid])
        if scored.voted is not None:
            with rasterio.open(inst_path) as src:
                voted = majority_map(src.read(1, window=region.window), pred, len(meta.classes))
            scored.voted.update(voted[valid], truth[valid])
        truth = np.where(pred == 255, IGNORE, truth)  # no prediction: not scored
        scored.preds.append(pred)
        scored.truths.append(truth)
        scored.pixels.append(res)
        scored.objects.append(_region_objects(region, pred, truth, inst_path, truth_spec, meta))
        scored.samples.extend(example_windows(rgb, truth, pred, n_windows))
        if i == 0:
            scored.first_image = rgb
    return scored


def _labelled_region(image: Path, labels: Path, truth: TruthSpec) -> Region:
    """The window of ``image`` covered by the labels' extent (read as ``truth`` says:
    centre lines widened to roads)."""
    info = raster_info(image)
    if is_raster(labels):
        with rasterio.open(labels) as src:
            bounds = rasterio.warp.transform_bounds(src.crs, info.crs, *src.bounds)
    else:
        bounds = tuple(truth.vectors(labels, info.crs, points=truth.sparse).total_bounds)
    window = rasterio.windows.from_bounds(*bounds, transform=info.transform)
    full = rasterio.windows.Window(0, 0, info.width, info.height)
    try:
        window = window.intersection(full).round_offsets().round_lengths()
    except rasterio.errors.WindowError as exc:
        raise DataError(f"{labels}: labels do not overlap {image}") from exc
    return Region(image, window, labels)


def _config_regions(config: Config) -> tuple[list[Region], str | None]:
    """Test (else validation) strips of a config, as windows of their scenes with their
    label files; and the config's label attribute."""
    from geounet.train.fit import label_files, prepare

    prepared = prepare(config, Path(config.run_dir))
    strips = prepared.split.test or prepared.split.val
    index = prepared.dataset.index
    files = label_files(config)
    regions = []
    for row, strip in zip(index.itertuples(), strips, strict=True):
        scene = Path(prepared.sources.get(row.filepath_1, row.filepath_1))
        labels = Path(files[0] if len(files) == 1 else _scene_labels(row, files))
        info = raster_info(scene)
        bounds = rasterio.warp.transform_bounds(prepared.dataset.crs, info.crs, *strip.bounds)
        window = rasterio.windows.from_bounds(*bounds, transform=info.transform)
        full = rasterio.windows.Window(0, 0, info.width, info.height)
        window = window.round_offsets().round_lengths().intersection(full)
        regions.append(Region(scene, window, labels))
    return regions, config.data.label_attribute


def _scene_labels(row: Any, files: list[str]) -> str:
    """The label file of a scene when each scene has its own (the one the dataset paired
    with it)."""
    name = getattr(row, "filepath_2", None)
    if name and any(Path(name) == Path(f) for f in files):
        return name
    return files[0]


@dataclass(frozen=True)
class TruthSpec:
    """How evaluation reads true labels: as the model was trained (codes, attribute
    values and groups to classes; nodata, NULL and ignored values not scored)."""

    spec: LabelSpec
    attribute: str | None
    sparse: bool
    line_width_m: float | None = None  # road models: centre lines are this wide

    @classmethod
    def of(cls, meta: ModelMeta, attribute: str | None = None) -> TruthSpec:
        """The label reading recorded in a model bundle (``attribute`` overrides)."""
        record = meta.labels or {}
        spec = LabelSpec.from_record(meta.classes, record)
        width = (meta.lines or {}).get("width_m")
        return cls(spec, attribute or record.get("attribute"), bool(record.get("sparse")), width)

    def vectors(self, path: PathLike, crs: Any, *, points: bool = False):
        """Label features in ``crs`` with their class ids."""
        return read_labels(
            path,
            crs=crs,
            class_attribute=self.attribute,
            spec=self.spec,
            points=points,
            line_width_m=self.line_width_m,
        )


def _read_region(
    region: Region, mask_path: Path, truth: TruthSpec, meta: ModelMeta
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """Prediction, truth (:data:`IGNORE` where not labelled), a display image of the
    region, and its pixel size in metres."""
    info = raster_info(region.scene)
    win = region.window
    transform = rasterio.windows.transform(win, info.transform)
    shape = (int(win.height), int(win.width))
    with rasterio.open(mask_path) as src:
        pred = src.read(1, window=win)
    if is_raster(region.labels):
        labels = _read_region_truth(region, truth, meta)
    else:
        # outside every feature is background only for dense labels of a model with a
        # background class; otherwise (sparse labels, land cover) it is not labelled
        sparse = truth.sparse or meta.classes[0] != "background"
        gdf = truth.vectors(region.labels, info.crs, points=sparse)
        labels = rasterize_labels(gdf, shape, transform, fill=IGNORE if sparse else 0)
    with rasterio.open(region.scene) as src:
        rgb = src.read(_display_indexes(meta, src.count), window=win).astype(np.float32)
        missing = ~src.dataset_mask(window=win).astype(bool)
    rgb[:, missing] = np.nan
    metres = info.ground_resolution
    return pred, labels.astype(np.int64), rgb, (metres, metres)


def _display_indexes(meta: ModelMeta, count: int) -> list[int]:
    """1-based scene bands to show: the model's RGB bands, else the first three (or one)."""
    if meta.display_bands:
        base = meta.band_indexes or list(range(1, count + 1))
        return [base[b] for b in meta.display_bands]
    return [1, 2, 3] if count >= 3 else [1]


def _boundary_metrics(preds, truths, pixels, meta: ModelMeta) -> dict[str, Any]:
    """HD and HD95 per class (but background), in pixels and metres (worst region
    reported), over labelled pixels; none for sparse labels, whose outlines are not the
    objects' outlines."""
    result: dict[str, Any] = {}
    if (meta.labels or {}).get("sparse"):
        return result
    for class_id, name in enumerate(meta.classes):
        if class_id == 0 and name == "background":
            continue
        values: dict[str, float] = {}
        if not any(
            ((p == class_id) | (t == class_id)).any() for p, t in zip(preds, truths, strict=True)
        ):
            continue  # absent from truth and prediction: no outline to compare
        for pred, truth, spacing in zip(preds, truths, pixels, strict=True):
            labelled = truth != IGNORE
            p, t = (pred == class_id) & labelled, truth == class_id
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
    truth_spec: TruthSpec,
    meta: ModelMeta,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Predicted and true polygons of the countable objects, in the region's pixel space.

    Binary models: the connected regions of the class map (or, for object models, the
    objects of the instance map) against the label polygons clipped to the region (or
    the connected regions of a label raster). Object models of several classes (fields
    of several crops): every object against every true polygon, whatever its class.
    Land-cover models (several classes, or two without a ``background``: clear / cloud)
    have no objects to score.
    """
    countable = len(meta.classes) == 2 and meta.classes[0] == "background"
    if not (countable or meta.objects is not None):
        return {}
    name = meta.object_name
    info = raster_info(region.scene)
    win = region.window
    shape = (int(win.height), int(win.width))
    if instances is not None:
        with rasterio.open(instances) as src:
            ids = src.read(1, window=win)
        pred_polys = _pixel_polygons(ids, instances=True).get(1, _NONE)
    else:
        pred_polys = _pixel_polygons(np.where(pred == 255, 0, pred)).get(1, _NONE)
    if is_raster(region.labels):
        fg = np.where((truth > 0) & (truth != IGNORE), 1 if len(meta.classes) == 2 else truth, 0)
        true_polys = _pixel_polygons(fg)
        true_polys = np.concatenate(list(true_polys.values())) if true_polys else _NONE
    else:
        gdf = truth_spec.vectors(region.labels, info.crs)
        gdf = gdf[(gdf["class_id"] > 0) & (gdf["class_id"] != IGNORE)]
        transform = rasterio.windows.transform(win, info.transform)
        box = shapely.box(0, 0, shape[1], shape[0])
        inverse = ~transform
        matrix = np.array([[inverse.a, inverse.d], [inverse.b, inverse.e]])
        offset = np.array([inverse.c, inverse.f])
        geoms = shapely.transform(
            np.asarray(gdf.geometry.values, dtype=object), lambda xy: xy @ matrix + offset
        )
        geoms = shapely.intersection(geoms, box)
        true_polys = geoms[~shapely.is_empty(geoms)]
    return {name: (pred_polys, true_polys)}


_NONE = np.zeros(0, dtype=object)


def _pixel_polygons(values: np.ndarray, instances: bool = False) -> dict:
    """Polygons of a class map (or instance map) in pixel coordinates, by class id."""
    from geounet.vectorize.polygons import array_source, polygonize_source

    regions = polygonize_source(array_source(values), None, instances=instances)
    ids = np.asarray(regions.class_ids, dtype=np.int64)
    geoms = np.asarray(regions.geoms, dtype=object)
    return {int(c): geoms[ids == c] for c in np.unique(ids)}


def _read_region_truth(region: Region, truth: TruthSpec, meta: ModelMeta) -> np.ndarray:
    """A label raster's classes on the region (nearest neighbour, in any CRS)."""
    info = raster_info(region.scene)
    with (
        rasterio.open(region.labels) as src,
        WarpedVRT(
            src,
            crs=info.crs,
            transform=info.transform,
            width=info.width,
            height=info.height,
            resampling=Resampling.nearest,
        ) as vrt,
    ):
        raw = vrt.read(1, window=region.window, masked=True)
        nodata = src.nodata
    classes = truth.spec.apply(np.ma.getdata(raw), region.labels, nodata=nodata)
    classes[np.ma.getmaskarray(raw)] = IGNORE  # outside the label raster
    return classes


def _min_object_px(pixel: tuple[float, float], min_m2: float | None) -> float:
    """Smallest polygon scored, in pixels: ``min_m2`` over the pixel area, else SpaceNet's."""
    from geounet.vectorize.score import SPACENET_MIN_PX

    return SPACENET_MIN_PX if min_m2 is None else min_m2 / (pixel[0] * pixel[1])


def _object_metrics(
    objects: list[dict], pixels: list[tuple[float, float]], meta: ModelMeta, min_m2: float | None
) -> dict[str, Any]:
    """Polygon object scores per kind of object (SpaceNet rule), over all regions."""
    from geounet.vectorize.score import SPACENET_MIN_PX, score_polygons

    result: dict[str, Any] = {}
    keys = ("tp", "fp", "fn", "n_pred", "n_true", "merges", "merged_true", "splits")
    names = list(objects[0]) if objects else []
    for name in names:
        totals = dict.fromkeys((*keys, "split_pieces"), 0)
        ious = []
        for region, pixel in zip(objects, pixels, strict=True):
            pred, truth = region[name]
            scores = score_polygons(pred, truth, min_area=_min_object_px(pixel, min_m2))
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


def example_windows(
    rgb: np.ndarray, truth: np.ndarray, pred: np.ndarray, n: int, size: int = 256
) -> list[tuple]:
    """Up to ``n`` windows of the region for the figure: the ones with the most labelled
    foreground, and for land cover (no background class) the most classes."""
    h, w = truth.shape
    size = min(size, h, w)
    candidates = []
    for r in range(0, max(1, h - size + 1), size):
        for c in range(0, max(1, w - size + 1), size):
            sl = (slice(r, r + size), slice(c, c + size))
            t = truth[sl]
            labelled = t[t != IGNORE]
            score = float((labelled > 0).mean()) if labelled.size else 0.0
            score += len(np.unique(labelled)) + (labelled.size / t.size)
            candidates.append((score, sl))
    candidates.sort(key=lambda t: -t[0])
    return [(rgb[(slice(None), *sl)], truth[sl], pred[sl]) for _, sl in candidates[:n]]
