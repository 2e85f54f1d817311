"""Prediction for chips, volumes and slices: read an input as the model was trained,
predict it with the sliding window, and write the class map on the input's own grid.

Outputs by extension: ``.png`` (palette PNG with the class colours), ``.tif`` (GeoTIFF
with a colour table, georeferenced when the input chip was), ``.nii`` / ``.nii.gz``
(the input volume's affine and header).
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geounet.data.cases import Preprocess, context_stack, prepare_case, resample
from geounet.data.sources import (
    SOURCES,
    FigshareMatSource,
    FolderSource,
    NiftiSource,
    RawCase,
)
from geounet.errors import DataError, InputFileNotFoundError, UnsupportedFormatError
from geounet.infer.scene import PredictOptions, make_predictor
from geounet.infer.sliding import sliding_window_predict
from geounet.io.chips import CHIP_SUFFIXES, chip_profile, write_chip_classes
from geounet.io.nifti import is_nifti, write_volume
from geounet.models.bundle import ModelMeta
from geounet.models.segmenter import Segmenter
from geounet.runtime import select_device

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class CasePrediction:
    """A written class map of one input."""

    path: Path
    class_pixels: dict[str, int]
    seconds: float


def model_source(meta: ModelMeta) -> FolderSource | NiftiSource | FigshareMatSource:
    """A reader for the model's kind of input, with the settings it was trained with."""
    p = meta.preprocess
    if meta.source == "folders":
        return FolderSource(".", mask_channel=int(p.get("mask_channel") or 0))
    if meta.source == "nifti":
        return NiftiSource([], modalities=p.get("modalities") or [], label_file=p.get("label_file"))
    if meta.source == "figshare_mat":
        return FigshareMatSource([])
    raise DataError(f"model input kind {meta.source!r} is not one of {sorted(SOURCES)}")


def input_files(meta: ModelMeta, item: PathLike | Sequence[PathLike]) -> list[Path]:
    """The files of one input: comma-joined or listed modality files, a case folder
    (found by the model's modality patterns) or one file."""
    if isinstance(item, str | os.PathLike):
        paths = [Path(p) for p in str(item).split(",")] if "," in str(item) else [Path(item)]
    else:
        paths = [Path(p) for p in item]
    if len(paths) == 1 and paths[0].is_dir() and meta.source == "nifti":
        images, _ = model_source(meta).case_files(paths[0], need_label=False)
        return images
    for p in paths:
        if not p.exists():
            raise InputFileNotFoundError(f"{p}: file not found; check the path")
    return paths


def predict_raw(
    model: Segmenter,
    meta: ModelMeta,
    raw: RawCase,
    options: PredictOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Class probabilities (K, *spatial) of a case on its own (native) grid.

    K is the class count (binary models give background and foreground).
    """
    options = options or PredictOptions()
    prep = Preprocess.from_dict(meta.preprocess)
    dims = int(getattr(model.net, "dims", 2))
    expected = meta.in_channels // (
        2 * prep.context + 1 if raw.image.ndim == 4 and dims == 2 else 1
    )
    if raw.image.shape[0] != expected:
        raise DataError(
            f"{raw.ref.images[0]}: {raw.image.shape[0]} channel(s) but the model takes "
            f"{expected} ({', '.join(meta.preprocess.get('modalities') or meta.bands)}); give "
            "every modality (comma-separated or the case folder)"
        )
    case = prepare_case(raw, prep, None, dims)
    device = select_device(options.device)
    net = model.to(device).eval()
    if dims == 2:
        net = net.use_channels_last()
    predict = make_predictor(net, meta, device, options)
    image = torch.from_numpy(case.image)
    if dims == 3:
        tile = [min(p, n) for p, n in zip(meta.patch or [96] * 3, image.shape[1:], strict=True)]
        probs = sliding_window_predict(
            image,
            predict,
            tile=tile,
            overlap=[t // 2 for t in tile],
            batch_size=_per_pass(options),
            blend="gaussian",
            progress=progress,
        )
    elif image.ndim == 4:
        probs = _slices(image, predict, prep.context, meta, options, progress)
    else:
        probs = _plane(image, predict, meta, options, progress)
    probs = probs.numpy()
    if meta.out_channels == 1:
        probs = np.concatenate([1 - probs, probs])
    if case.slice_axis is not None:
        probs = np.moveaxis(probs, 1, case.slice_axis + 1)
    if tuple(probs.shape[1:]) != tuple(case.native_shape):
        probs = resample(probs, case.native_shape)
    return probs


def _tile(meta: ModelMeta, options: PredictOptions, shape: Sequence[int]) -> list[int]:
    tile = options.tile or max(meta.tile_size, 512)
    return [min(tile, int(n)) for n in shape]


def _per_pass(options: PredictOptions) -> int:
    """Windows or slices per forward pass: the option, else 4 (chips and volumes)."""
    return options.batch_size or 4


def _plane(image, predict, meta, options, progress) -> torch.Tensor:
    tile = _tile(meta, options, image.shape[1:])
    overlap = options.overlap if options.overlap is not None else max(tile) // 8
    return sliding_window_predict(
        image,
        predict,
        tile=tile,
        overlap=[min(overlap, t - 1) for t in tile],
        batch_size=_per_pass(options),
        progress=progress,
    )


def _slices(volume, predict, context, meta, options, progress) -> torch.Tensor:
    """2D model over every slice (first spatial axis) of a (C, S, H, W) volume."""
    n = volume.shape[1]
    tile = _tile(meta, options, volume.shape[2:])
    out = None
    if tile == list(volume.shape[2:]):  # whole slices fit: batch slices directly
        per_pass = _per_pass(options)
        for s0 in range(0, n, per_pass):
            batch = torch.stack(
                [
                    torch.from_numpy(context_stack(volume.numpy(), s, context))
                    for s in range(s0, min(n, s0 + per_pass))
                ]
            )
            probs = predict(batch).float()
            if out is None:
                out = torch.zeros(probs.shape[1], n, *volume.shape[2:])
            out[:, s0 : s0 + len(probs)] = probs.transpose(0, 1)
            if progress is not None:
                progress(min(n, s0 + per_pass), n)
        return out
    for s in range(n):
        plane = torch.from_numpy(context_stack(volume.numpy(), s, context))
        probs = _plane(plane, predict, meta, options, None)
        if out is None:
            out = torch.zeros(probs.shape[0], n, *volume.shape[2:])
        out[:, s] = probs
        if progress is not None:
            progress(s + 1, n)
    return out


def write_classes(out: PathLike, classes: np.ndarray, raw: RawCase, meta: ModelMeta) -> Path:
    """Write a class map on the input's grid, the format chosen by ``out``'s extension."""
    out = Path(out)
    _check_output(out, meta)
    if is_nifti(out):
        return write_volume(out, classes, raw.grid)
    georef = None
    if out.suffix.lower() != ".png" and meta.source == "folders":
        georef = chip_profile(raw.grid)
    return write_chip_classes(
        out, classes, colors=meta.colors, class_names=meta.classes, georef=georef
    )


def predict_input(
    model: Segmenter,
    meta: ModelMeta,
    item: PathLike | Sequence[PathLike],
    out: PathLike,
    options: PredictOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CasePrediction:
    """Predict one input (chip, NIfTI case, .mat slice) and write its class map to ``out``."""
    start = time.perf_counter()
    _check_output(out, meta)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    files = input_files(meta, item)
    raw = model_source(meta).read_input(files)
    probs = predict_raw(model, meta, raw, options, progress)
    classes = probs.argmax(0).astype(np.uint8)
    path = write_classes(out, classes, raw, meta)
    counts = np.bincount(classes.ravel(), minlength=len(meta.classes))
    return CasePrediction(
        path,
        {name: int(n) for name, n in zip(meta.classes, counts, strict=False)},
        time.perf_counter() - start,
    )


def _check_output(out: PathLike, meta: ModelMeta) -> None:
    """Refuse an output format the input kind cannot produce, before any work."""
    if is_nifti(out) and meta.source != "nifti":
        raise UnsupportedFormatError(
            f"{out}: NIfTI output needs a NIfTI input; write 2D results as .png or .tif"
        )
    if meta.source == "nifti" and not is_nifti(out):
        raise UnsupportedFormatError(f"{out}: a volume's result needs .nii or .nii.gz output")
    suffix = Path(out).suffix.lower()
    if not (is_nifti(out) or suffix in (".png", ".tif", ".tiff")):
        raise UnsupportedFormatError(
            f"{out}: unknown output format {suffix!r}; use .png, .tif or .nii.gz"
        )


def folder_items(meta: ModelMeta, folder: Path) -> list[Path]:
    """The inputs inside a folder: chips, .mat files, or NIfTI case folders."""
    if meta.source == "nifti":
        items = sorted(p for p in folder.iterdir() if p.is_dir())
        if not items and any(is_nifti(p) for p in folder.iterdir()):
            return [folder]  # the folder is one case
    elif meta.source == "figshare_mat":
        items = sorted(folder.glob("*.mat"))
    else:
        image_glob = meta.preprocess.get("image_pattern")
        mask_glob = meta.preprocess.get("mask_pattern")

        def wanted(p: Path) -> bool:
            name = p.name.lower()
            if p.suffix.lower() not in CHIP_SUFFIXES or fnmatch.fnmatch(name, "*_pred.*"):
                return False  # results of an earlier run are not inputs
            if image_glob:
                return fnmatch.fnmatch(name, image_glob.lower())
            return not (mask_glob and fnmatch.fnmatch(name, mask_glob.lower()))

        items = sorted(p for p in folder.iterdir() if wanted(p))
    if not items:
        raise DataError(f"{folder}: no inputs for this {meta.source} model inside")
    return items


def default_output(meta: ModelMeta, item: Path, folder: Path) -> Path:
    """Where a folder run writes the result of ``item``."""
    stem = item.name
    for suffix in (".nii.gz", ".nii", item.suffix):
        if suffix and stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    suffix = ".nii.gz" if meta.source == "nifti" else ".png"
    return folder / f"{stem}_pred{suffix}"
