"""Evaluation figures (PNG) and the Markdown report."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geounet.io.atomic import atomic_output
from geounet.io.style import class_colors
from geounet.models.bundle import ModelMeta


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, *, layout: bool = True, tight: bool = False) -> Path:
    """Write a figure atomically as PNG and free it; ``tight`` grows the picture to hold
    legends placed outside the panels."""
    if layout:
        fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=80, bbox_inches="tight" if tight else None, pad_inches=0.15)
    _pyplot().close(fig)
    return path


def _display(rgb: np.ndarray) -> np.ndarray:
    """A 2-98 % stretched (H, W, 3) image for display, from 1 or 3 bands, per band; no
    data (NaN) shows white."""
    img = np.asarray(rgb, dtype=np.float32)
    img = np.repeat(img, 3, axis=0) if img.shape[0] == 1 else img[:3]
    out = np.ones(img.shape, dtype=np.float32)
    for b, band in enumerate(img):
        finite = np.isfinite(band)
        if not finite.any():
            continue
        lo, hi = np.percentile(band[finite], [2, 98])
        out[b] = np.where(finite, np.clip((band - lo) / max(hi - lo, 1e-6), 0, 1), 1.0)
    return np.moveaxis(out, 0, -1)


_TP, _FP, _FN, _WRONG, _UNLABELLED = (
    (0.1, 0.8, 0.1),
    (0.9, 0.1, 0.1),
    (0.1, 0.3, 0.9),
    (0.75, 0.0, 0.75),
    (0.85, 0.85, 0.85),
)


def _class_colors(meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """(256, 3) RGB in [0, 1] and (256,) opacity: the class colours (as in the class
    map's style: a background class is transparent), then grey for 255 (not labelled)."""
    rgba = class_colors(meta.classes, meta.colors)
    colors = np.zeros((256, 3), dtype=np.float32)
    alpha = np.ones(256, dtype=np.float32)
    for i, c in enumerate(rgba[:255]):
        colors[i], alpha[i] = np.array(c[:3]) / 255, c[3] / 255
    colors[255] = _UNLABELLED
    return colors, alpha


def _overlay(image: np.ndarray, ids: np.ndarray, colors: np.ndarray, alpha: np.ndarray):
    """Class colours over a faded greyscale of the image, which shows through
    transparent classes (background), as the map would over the imagery in QGIS."""
    grey = 0.35 + 0.5 * image.mean(axis=-1, keepdims=True)
    a = alpha[ids][..., None]
    return a * colors[ids] + (1 - a) * np.repeat(grey, 3, axis=-1)


def windows_figure(samples: Sequence[tuple], meta: ModelMeta, path: Path) -> Path:
    """Rows of image | truth | prediction | errors windows, with the class legend.

    Errors: for a background-and-object task green true positives, red false positives,
    blue misses; for land cover (every class a class) green right, red wrong; grey
    pixels are not labelled (or have no data).
    """
    from matplotlib.patches import Patch

    plt = _pyplot()
    colors, alpha = _class_colors(meta)
    background = meta.classes[0] == "background"
    rows = max(1, len(samples))
    fig, axes = plt.subplots(rows, 4, figsize=(12, 3 * rows + 0.4), squeeze=False)
    for ax_row, (rgb, truth, pred) in zip(axes, samples, strict=False):
        truth = np.where((truth < 0) | (truth > 255), 255, truth)
        pred = np.where(pred == 255, 255, pred)
        labelled = (truth != 255) & (pred != 255)
        errors = np.full((*truth.shape, 3), _UNLABELLED, dtype=np.float32)
        if background:
            fg_t, fg_p = truth > 0, pred > 0
            errors[labelled] = (1.0, 1.0, 1.0)
            errors[labelled & fg_t & fg_p & (truth == pred)] = _TP
            errors[labelled & fg_p & ~(fg_t & (truth == pred))] = _FP
            errors[labelled & fg_t & ~fg_p] = _FN
        else:
            errors[labelled & (truth == pred)] = _TP
            errors[labelled & (truth != pred)] = _WRONG
        image = _display(rgb)
        panels = [
            image,
            _overlay(image, truth, colors, alpha),
            _overlay(image, pred, colors, alpha),
            errors,
        ]
        for ax, panel, title in zip(
            ax_row, panels, ("image", "truth", "prediction", "errors"), strict=True
        ):
            ax.imshow(panel, interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
    classes = [  # a transparent class shows the imagery: say so (its box is empty)
        Patch(
            facecolor=(*colors[i], alpha[i]),
            edgecolor="0.4",
            label=name if alpha[i] > 0 else f"{name} (transparent)",
        )
        for i, name in enumerate(meta.classes)
    ]
    if background:
        errors = [
            Patch(facecolor=_TP, label="right"),
            Patch(facecolor="white", edgecolor="0.4", label="right, background"),
            Patch(facecolor=_FP, label="false alarm / wrong class"),
            Patch(facecolor=_FN, label="missed"),
        ]
    else:
        errors = [Patch(facecolor=_TP, label="right"), Patch(facecolor=_WRONG, label="wrong")]
    errors.append(Patch(facecolor=_UNLABELLED, edgecolor="0.4", label="not labelled / no data"))
    fig.tight_layout(h_pad=1.5)
    # legends under the panels: the classes below truth and prediction, the error
    # colours below the errors; the saved picture grows to hold them
    style = {"fontsize": 9, "frameon": False, "loc": "upper center", "title_fontsize": 10}
    left, right = axes[-1][1].get_position(), axes[-1][3].get_position()
    ncol = min(3, len(classes))
    middle = (left.x0 + axes[-1][2].get_position().x1) / 2
    fig.legend(
        handles=classes, title="classes", ncol=ncol, bbox_to_anchor=(middle, left.y0), **style
    )
    fig.legend(
        handles=errors,
        title="errors",
        bbox_to_anchor=((right.x0 + right.x1) / 2, right.y0),
        **style,
    )
    return _save(fig, path, layout=False, tight=True)


def confusion_figure(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path) -> Path:
    """The confusion matrix with class names: shares of each true class (rows) by
    predicted class, pixel counts in the cells."""
    plt = _pyplot()
    m = np.asarray(matrix, dtype=np.float64)
    share = m / np.maximum(m.sum(1, keepdims=True), 1)
    k = len(classes)
    side = max(4.0, 0.6 * k + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    for i in range(k):
        for j in range(k):
            if m[i, j]:
                ax.text(
                    j,
                    i,
                    f"{share[i, j]:.2f}\n{int(m[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_title("confusion matrix (rows: truth)")
    return _save(fig, path)


def objects_figure(
    rgb: np.ndarray, pred: Sequence[Any], truth: Sequence[Any], path: Path, title: str = ""
) -> Path:
    """Outlines over the image: matched predictions green, unmatched red, missed truths blue.

    Args:
        rgb: (bands, H, W) image of the region.
        pred: Predicted polygons in the region's pixel coordinates (x = column).
        truth: True polygons in the same coordinates.
        path: Output PNG.
        title: Put before the counts in the title (``first region: ``).
    """
    import shapely

    from geounet.vectorize.score import matched_flags

    plt = _pyplot()
    hit_p, hit_t = matched_flags(pred, truth)
    h, w = rgb.shape[1:]
    scale = max(1.0, max(h, w) / 1200)  # figures stay readable in size
    side = 10  # inches of the longer image side
    fig, axes = plt.subplots(
        1, 2, figsize=(2 * side * w / max(h, w) + 0.4, side * h / max(h, w) + 0.8)
    )
    image = _display(rgb[:, :: int(scale), :: int(scale)])
    titles = ("truth (blue: missed)", "prediction (green: matched)")
    for ax, heading in zip(axes, titles, strict=True):
        ax.imshow(image, extent=(0, w, h, 0), interpolation="nearest")
        ax.set_title(heading)
        ax.axis("off")

    def outline(ax: Any, geoms: Sequence[Any], flags: np.ndarray, on: str, off: str) -> None:
        for geom, flag in zip(geoms, flags, strict=True):
            for part in shapely.get_parts(geom):
                if part.geom_type != "Polygon" or part.is_empty:
                    continue
                x, y = part.exterior.xy
                ax.plot(x, y, color=on if flag else off, linewidth=1.2)

    outline(axes[0], list(truth), hit_t, "white", "tab:blue")
    outline(axes[1], list(pred), hit_p, "lime", "red")
    fig.suptitle(
        f"{title}{int(hit_p.sum())} matched (IoU > 0.5) of {len(truth)} true, {len(pred)} predicted"
    )
    _line_legend(
        fig,
        [
            ("white", "true, found"),
            ("tab:blue", "true, missed"),
            ("lime", "predicted, matched"),
            ("red", "predicted, false alarm"),
        ],
    )
    return _save(fig, path, layout=False, tight=True)


def _line_legend(
    fig: Any, lines: Sequence[tuple[str, str]], dots: Sequence[tuple[str, str, str]] = ()
) -> None:
    """A legend under the panels: coloured lines (colour, label) and dots (fill, edge,
    label), on grey so that white and bright colours show."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, linewidth=2.5, label=label) for c, label in lines]
    handles += [
        Line2D([], [], linestyle="", marker="o", markerfacecolor=f, color=e, label=label)
        for f, e, label in dots
    ]
    fig.tight_layout(rect=(0, 0, 1, 0.95 if fig.get_suptitle() else 1))
    # one row where the picture is wide enough, else two columns (tall, narrow scenes);
    # the saved picture grows to hold the legend (``_save(..., tight=True)``)
    bottom = min(ax.get_position().y0 for ax in fig.axes)
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, bottom),
        ncol=len(handles) if fig.get_figwidth() >= 11 else 2,
        frameon=True,
        facecolor="0.55",
        fontsize=10,
    )


def network_figure(
    rgb: np.ndarray, pred: Sequence[Any], truth: Sequence[Any], path: Path, title: str = ""
) -> Path:
    """Road networks over the image: true centre lines (left, cyan) and the predicted
    network (right, orange, line ends and junctions as dots).

    Args:
        rgb: (bands, H, W) image of the region.
        pred: Predicted lines in the region's pixel coordinates (x = column).
        truth: True centre lines in the same coordinates.
        path: Output PNG.
        title: Figure title (the scores).
    """
    from geounet.vectorize.network import lines_graph

    plt = _pyplot()
    h, w = rgb.shape[1:]
    step = int(max(1.0, max(h, w) / 1200))
    side = 10
    fig, axes = plt.subplots(
        1, 2, figsize=(2 * side * w / max(h, w) + 0.4, side * h / max(h, w) + 0.8)
    )
    image = _display(rgb[:, ::step, ::step])
    for ax, lines, colour, name in (
        (axes[0], truth, "cyan", "true centre lines"),
        (axes[1], pred, "orange", "predicted network"),
    ):
        ax.imshow(image, extent=(0, w, h, 0), interpolation="nearest")
        for line in lines:
            x, y = line.xy
            ax.plot(x, y, color=colour, linewidth=1.8)
        nodes = [n for n, d in lines_graph(lines).degree() if d != 2]
        if nodes:
            xs, ys = zip(*nodes, strict=True)
            ax.scatter(xs, ys, s=12, color="white", edgecolors=colour, zorder=3)
        ax.set_title(f"{name} ({len(lines)} lines)")
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    _line_legend(
        fig,
        [("cyan", "true centre lines"), ("orange", "predicted network")],
        dots=[("white", "orange", "line ends and junctions")],
    )
    return _save(fig, path, layout=False, tight=True)


def training_curves_figure(metrics_csv: Path, path: Path) -> Path:
    """Loss and validation IoU per epoch from a run's ``metrics.csv``."""
    plt = _pyplot()
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))

    def column(name: str) -> tuple[list[int], list[float]]:
        pairs = [(int(r["epoch"]), float(r[name])) for r in rows if r.get(name)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name in ("train_loss", "val_loss"):
        ax1.plot(*column(name), label=name)
    ax1.set_xlabel("epoch")
    ax1.set_title("loss")
    ax1.legend()
    ax2.plot(*column("val_iou"), color="tab:green")
    ax2.set_xlabel("epoch")
    ax2.set_title("validation IoU")
    return _save(fig, path)


def _num(value: float | None, digits: int = 2) -> str:
    """A metric for the table, or a dash when it does not apply (absent class)."""
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return "-"
    return f"{value:.{digits}f}"


def class_table(scores: dict[str, Any], classes: Sequence[str]) -> list[str]:
    """Markdown rows: per-class IoU, F1, precision, recall and support, then the mean IoU
    over the classes present."""
    lines = [
        "| class | IoU | F1 | precision | recall | support (px) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in classes:
        c = scores[name]
        lines.append(
            f"| {name} | {_num(c['iou'], 4)} | {_num(c['dice'], 4)} | "
            f"{_num(c['precision'], 4)} | {_num(c['recall'], 4)} | {c['support']} |"
        )
    lines += [
        "",
        f"Mean IoU over the classes present: {_num(scores['macro_iou'], 4)}; "
        f"pixel accuracy {_num(scores['pixel_accuracy'], 4)}.",
    ]
    return lines


def xview2_table(metrics: dict[str, Any]) -> list[str]:
    """Markdown lines of the xView2 score, per pixel and per building polygon."""
    rows = [("pixels of the class map", metrics["xview2"])]
    if metrics.get("xview2_buildings"):
        rows.append(("buildings (each its majority class)", metrics["xview2_buildings"]))
    lines = [
        "## xView2 score",
        "",
        "Localisation F1 (building pixels), damage F1 (harmonic mean of the four grades' F1 "
        "on true building pixels), score = 0.3 x localisation + 0.7 x damage.",
        "",
        "| scored | score | localisation F1 | damage F1 | no damage | minor | major | destroyed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, x in rows:
        per = " | ".join(_num(v, 4) for v in x["damage_f1_per_class"])
        lines.append(
            f"| {name} | {x['score']:.4f} | {x['localization_f1']:.4f} | "
            f"{x['damage_f1']:.4f} | {per} |"
        )
    absent = [x for _, x in rows if None in x["damage_f1_per_class"]]
    if absent:
        lines += [
            "",
            "A grade is absent from both truth and prediction here (-): officially its F1 is "
            "0 and the damage F1 about 0. Over the grades present: "
            + ", ".join(
                f"{name} score {_num(x['score_present_grades'], 4)} (damage F1 "
                f"{_num(x['damage_f1_present_grades'], 4)})"
                for name, x in rows
            )
            + ".",
        ]
    return lines


def road_table(roads: dict[str, Any], unit: str) -> list[str]:
    """Markdown lines of the road scores: pixels, buffer scores and APLS."""
    return [
        "## Road network",
        "",
        f"Completeness / correctness / quality: centre lines within {roads['tolerance_m']:g} "
        f"{unit} of the other side's. APLS (SpaceNet 3): path lengths between control nodes, "
        "both ways, harmonic mean.",
        "",
        "| road IoU | road F1 | completeness | correctness | quality | APLS | APLS true->pred "
        "| APLS pred->true |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {_num(roads['iou'], 4)} | {_num(roads['f1'], 4)} | {_num(roads['completeness'], 4)} "
        f"| {_num(roads['correctness'], 4)} | {_num(roads['quality'], 4)} | "
        f"{_num(roads['apls'], 4)} | {_num(roads['apls_gt_to_prop'], 4)} | "
        f"{_num(roads['apls_prop_to_gt'], 4)} |",
    ]


def write_report(
    metrics: dict[str, Any], meta: ModelMeta, figures: Sequence[Path], path: Path, *, model: Path
) -> Path:
    """A Markdown report: headline scores, per-class table, confusion matrix, objects."""
    lines = [
        f"# Evaluation of `{model.name}`",
        "",
        f"Model: {meta.architecture} {meta.arguments}, bands {', '.join(meta.bands)}, "
        f"trained at {meta.ground_resolution_m or float('nan'):.3g} m. "
        f"Regions evaluated: {metrics['regions']}.",
        "",
        f"- pixel accuracy: {_num(metrics['pixel_accuracy'], 4)}",
        f"- mean IoU: {_num(metrics['macro_iou'], 4)} (over the classes present in truth "
        "or prediction)",
        f"- micro IoU: {_num(metrics['micro_iou'], 4)} (pooled over classes)",
        f"- macro Dice/F1: {_num(metrics['macro_dice'], 4)}",
        "",
        "## Per class",
        "",
        "| class | IoU | Dice/F1 | precision | recall | support (px) | HD95 (m) | HD (m) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in meta.classes:
        c = metrics["classes"][name] if "classes" in metrics else metrics[name]
        b = metrics.get("boundary", {}).get(name, {})
        lines.append(
            f"| {name} | {_num(c['iou'], 4)} | {_num(c['dice'], 4)} | "
            f"{_num(c['precision'], 4)} | {_num(c['recall'], 4)} | {c['support']} | "
            f"{_num(b.get('hd95_m'))} | "
            f"{_num(b.get('hd_m'))} |"
        )
    lines += ["", "## Confusion matrix (rows: truth, columns: prediction)", ""]
    lines.append("| | " + " | ".join(meta.classes) + " |")
    lines.append("|---|" + "---:|" * len(meta.classes))
    for name, row in zip(meta.classes, metrics["confusion_matrix"], strict=True):
        lines.append(f"| **{name}** | " + " | ".join(str(v) for v in row) + " |")
    if metrics.get("objects"):
        first = next(iter(metrics["objects"].values()))
        source = "separate objects (instance map)"
        if not first.get("instances"):
            source = "connected regions of the class map"
        lines += [
            "",
            f"## Objects: polygons, SpaceNet rule ({first.get('rule', '')})",
            "",
            f"Predicted objects are the {source}. A merge is one predicted polygon covering "
            "half or more of two or more true ones; a split is a true polygon with two or more "
            "predicted polygons mostly inside it.",
            "",
            "| objects | true | predicted | matched | precision | recall | F1 | mean IoU "
            "| merges (true inside) | splits (pieces) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        extra: list[str] = []
        for name, o in metrics["objects"].items():
            if o.get("pixel_iou") is not None:
                extra.append(
                    f"{name} pixel IoU (any class against background): {o['pixel_iou']:.4f}"
                )
            lines.append(
                f"| {name} | {o['n_true']} | {o['n_pred']} | {o['tp']} | "
                f"{o['precision']:.4f} | {o['recall']:.4f} | {o['f1']:.4f} | "
                f"{o['mean_iou']:.3f} | {o['merges']} ({o['merged_true']}) | "
                f"{o['splits']} ({o['split_pieces']}) |"
            )
        if extra:
            lines += ["", *extra]
    if metrics.get("roads"):
        lines += ["", *road_table(metrics["roads"], "m")]
    if metrics.get("xview2"):
        lines += ["", *xview2_table(metrics)]
    lines += ["", "## Figures", ""]
    lines += [f"![{f.stem}]({f.name})" for f in figures]
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
