"""Evaluate a chip, volume or slice model case by case: per-case Dice, IoU and HD95 (mm
from the voxel spacing) per class or label region, their means, pixel error and, for
membrane-style tasks, the adapted Rand error of the regions the foreground separates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from geounet.data.cases import strip_window
from geounet.data.sources import CaseRef
from geounet.errors import DataError, InputFileNotFoundError
from geounet.evaluate import EvalResult, example_windows, road_summary
from geounet.infer.cases import input_files, model_source, predict_raw
from geounet.infer.scene import PredictOptions
from geounet.io.atomic import atomic_output, write_json
from geounet.io.labelmap import IGNORE, LabelSpec, region_classes
from geounet.models.bundle import ModelMeta, load_bundle
from geounet.train.cases import evaluation_refs, label_spec, make_source
from geounet.train.metrics import ConfusionMatrix, hausdorff_distance

PathLike = str | os.PathLike[str]


def evaluate_cases(
    model: PathLike,
    out_dir: PathLike,
    config: Any = None,
    *,
    image: PathLike | None = None,
    labels: PathLike | None = None,
    options: PredictOptions | None = None,
) -> EvalResult:
    """Score ``model`` on a config's test cases (its validation cases when it has none),
    or on one input ``image`` (chip, case folder or comma-joined modalities, ``.mat``)
    with its ``labels`` file, read with the label mapping stored in the model.

    Each case is predicted whole (the sliding window over the full chip or volume, at
    the model's spacing, brought back to the case's own grid) and scored there.

    Returns:
        An :class:`~geounet.evaluate.EvalResult`; ``metrics["cases"]`` holds one row per
        case, ``metrics["mean"]`` the mean per class or region.
    """
    net, meta = load_bundle(model)
    if config is not None:
        source, refs, spec = (
            make_source(config.data),
            evaluation_refs(config),
            label_spec(config.data),
        )
    elif image is not None and labels is not None:
        files = input_files(meta, image)
        label_path = Path(labels)
        if not label_path.is_file():
            raise InputFileNotFoundError(f"{label_path}: label file not found")
        source, spec = model_source(meta), meta_label_spec(meta)
        refs = [CaseRef(files[0].stem, files[0].stem, files, label_path)]
    else:
        raise DataError("evaluate needs --config, or --image and --labels")
    return _score(net, meta, source, refs, spec, Path(out_dir), Path(model), options)


def _score(net, meta, source, refs, labels, out, model: Path, options) -> EvalResult:
    """Predict and score every case; write metrics, report and figures."""
    regions = _regions(meta)
    out.mkdir(parents=True, exist_ok=True)
    confusion = ConfusionMatrix(len(meta.classes))
    rows, samples = [], []
    wrong = total = 0
    rand_errors = []
    roads = None
    if meta.lines is not None:
        from geounet.vectorize.network_score import RoadScores

        roads = RoadScores(meta.lines)
    for ref in refs:
        raw = source.read(ref)
        truth = labels.apply(raw.label, ref.label)
        probs = predict_raw(net, meta, raw, options)  # the whole case: full context
        pred = probs.argmax(0)
        image = raw.image
        strip = ref.extra.get("strip")
        if strip is not None:  # scored inside its validation (or test) strip only
            ys, xs = strip_window(truth.shape, strip)
            pred, truth, image = pred[ys, xs], truth[ys, xs], image[:, ys, xs]
        valid = truth != IGNORE
        confusion.update(pred[valid], truth[valid])
        wrong += int((pred[valid] != truth[valid]).sum())
        total += int(valid.sum())
        row: dict[str, Any] = {"case": ref.id}
        for name, ids in regions.items():
            p, t = np.isin(pred, ids) & valid, np.isin(truth, ids) & valid
            row[name] = _scores(p, t, raw.spacing)
        if meta.preprocess.get("rand_error") and pred.ndim == 2:
            row["adapted_rand_error"] = _rand_error(pred, truth)
            rand_errors.append(row["adapted_rand_error"])
        if roads is not None:
            roads.add((pred > 0) & valid, (truth > 0) & valid, meta.ground_resolution_m or 1.0)
        rows.append(row)
        samples.append(_sample(image, truth, pred))
    metrics: dict[str, Any] = {
        "cases": rows,
        "mean": {name: _mean([r[name] for r in rows]) for name in regions},
        "pixel_error": wrong / max(1, total),
        # distances in mm from the voxel spacing of volumes; in pixels for chips and slices
        "distance_unit": "mm" if meta.source == "nifti" else "px",
    }
    if rand_errors:
        metrics["adapted_rand_error"] = float(np.mean(rand_errors))
    # every labelled pixel of every case pooled: per-class IoU, F1, precision, recall
    pooled = confusion.scores(meta.classes)
    metrics["pooled"] = pooled
    metrics["present_classes"] = [n for n in meta.classes if pooled[n]["iou"] is not None]
    if roads is not None:  # lengths in metres from data.resolution, else in pixels
        metrics["roads"] = road_summary(pooled["confusion_matrix"], roads.result())
    metrics_path = out / "metrics.json"
    write_json(metrics, metrics_path)
    from geounet.report import confusion_figure, training_curves_figure, windows_figure

    road_example = None
    if roads is not None and roads.lines:  # the case with the most true road to show
        i = max(range(len(roads.lines)), key=lambda k: sum(g.length for g in roads.lines[k][1]))
        road_example = (refs[i].id, samples[i][0], *roads.lines[i])
    samples.sort(key=lambda s: -float(((s[1] > 0) & (s[1] != IGNORE)).mean()))
    figures = [windows_figure(samples[:4], meta, out / "cases.png")]
    if road_example is not None:
        from geounet.report import network_figure

        r, (case, *shown) = metrics["roads"], road_example
        figures.append(
            network_figure(
                *shown, out / "network.png", f"{case}; all cases: APLS {r['apls'] or 0:.3f}"
            )
        )
    if len(meta.classes) > 2:
        figures.append(
            confusion_figure(pooled["confusion_matrix"], meta.classes, out / "confusion.png")
        )
    curves = model.with_name("metrics.csv")
    if curves.exists():
        figures.append(training_curves_figure(curves, out / "training_curves.png"))
    report = _write_report(metrics, meta, figures, out / "report.md", model)
    return EvalResult(metrics, metrics_path, report, figures)


def meta_label_spec(meta: ModelMeta) -> LabelSpec:
    """The label mapping a model was trained with (stored in its bundle)."""
    p = meta.preprocess
    groups = p.get("label_groups") or {}
    return LabelSpec(
        num_classes=len(meta.classes),
        label_map={int(k): int(v) for k, v in (p.get("label_map") or {}).items()} or None,
        groups=list(groups.values()) or None,
        ignore_values=list(p.get("ignore_values") or []),
        threshold=p.get("mask_threshold"),
    )


def _regions(meta: ModelMeta) -> dict[str, list[int]]:
    """Scored regions: the label groups (nested ones include their sub-regions), or every
    foreground class."""
    groups = meta.preprocess.get("label_groups") or {}
    if groups:
        ids = region_classes(list(groups.values()))
        return dict(zip(groups, ids, strict=True))
    return {name: [i] for i, name in enumerate(meta.classes) if i > 0}


def _scores(pred: np.ndarray, truth: np.ndarray, spacing) -> dict[str, float | None]:
    inter = float((pred & truth).sum())
    p, t = float(pred.sum()), float(truth.sum())
    dice = 2 * inter / (p + t) if p + t else 1.0
    iou = inter / (p + t - inter) if p + t - inter else 1.0
    hd = hausdorff_distance(pred, truth, spacing=tuple(spacing)[: pred.ndim], percentile=95)
    return {
        "dice": dice,
        "iou": iou,
        "hd95": None if not np.isfinite(hd) else hd,
        "true_voxels": int(t),
        "predicted_voxels": int(p),
    }


def _mean(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in ("dice", "iou", "hd95"):
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = float(np.mean(values)) if values else None
    return out


def _rand_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Adapted Rand error (skimage) of the regions separated by the foreground (cells
    between membranes), each labelled as a connected component."""
    from scipy import ndimage
    from skimage.metrics import adapted_rand_error

    true_regions, _ = ndimage.label(truth == 0)
    pred_regions, _ = ndimage.label(pred == 0)
    error, _, _ = adapted_rand_error(true_regions, pred_regions)
    return float(error)


def _sample(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> tuple:
    """A 2D view for the figure: the slice of a volume with the most true foreground; of a
    long strip, its square with the most classes and labelled foreground."""
    if truth.ndim == 3:
        fg = (truth > 0) & (truth != IGNORE)
        axis = int(np.argmin(truth.shape))  # the thinnest axis is usually the slice axis
        counts = fg.sum(axis=tuple(i for i in range(3) if i != axis))
        s = int(np.argmax(counts)) if counts.any() else truth.shape[axis] // 2
        take = [slice(None)] * 3
        take[axis] = s
        image = image[(slice(None), *take)]
        truth, pred = truth[tuple(take)], pred[tuple(take)]
    shown = image[:3] if image.shape[0] >= 3 else image[:1]
    h, w = truth.shape
    if max(h, w) > 1.5 * min(h, w):  # a validation strip: its most telling square
        (shown, truth, pred), *_ = example_windows(shown, truth, pred, 1, min(h, w))
    return shown.astype(np.float32), truth.astype(np.int64), pred.astype(np.int64)


def _write_report(
    metrics: dict[str, Any], meta: ModelMeta, figures: list[Path], path: Path, model: Path
) -> Path:
    regions = list(metrics["mean"])
    lines = [
        f"# Evaluation of `{model.name}`",
        "",
        f"{len(metrics['cases'])} cases ({meta.source}), classes: {', '.join(meta.classes)}.",
        f"Dice / IoU per case and region; HD95 in {metrics['distance_unit']}"
        + (" (from the voxel spacing)." if metrics["distance_unit"] == "mm" else "."),
        "",
        "| case | " + " | ".join(f"{r} Dice | {r} IoU | {r} HD95" for r in regions) + " |",
        "|---|" + "---:|" * (3 * len(regions)),
    ]

    def cells(scores: dict[str, float | None]) -> str:
        hd = scores.get("hd95")
        return f"{scores['dice']:.4f} | {scores['iou']:.4f} | {'-' if hd is None else f'{hd:.2f}'}"

    for row in metrics["cases"]:
        lines.append(f"| {row['case']} | " + " | ".join(cells(row[r]) for r in regions) + " |")
    lines.append("| **mean** | " + " | ".join(cells(metrics["mean"][r]) for r in regions) + " |")
    lines += ["", f"Pixel error (misclassified share): {metrics['pixel_error']:.4f}"]
    pooled = metrics.get("pooled")
    if pooled is not None:
        from geounet.report import class_table

        lines += ["", "## Per class, all cases pooled", ""]
        lines += class_table(pooled, meta.classes)
    if "adapted_rand_error" in metrics:
        lines.append(f"Adapted Rand error (skimage): {metrics['adapted_rand_error']:.4f}")
    if metrics.get("roads"):
        from geounet.report import road_table

        unit = "m" if meta.ground_resolution_m else "px"
        lines += ["", *road_table(metrics["roads"], unit)]
    lines.append("")
    lines += [f"![{f.stem}]({f.name})" for f in figures]
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
