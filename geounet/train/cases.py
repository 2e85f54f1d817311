"""Training data for chips, volumes and slices: cases read, split, prepared and sampled.

The counterpart of :func:`geounet.train.fit.prepare` for every source other than GeoTIFF
scenes; the model, loss, Lightning task, bundle and trainer are the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, SequentialSampler

from geounet.data.cases import (
    IGNORE,
    Case,
    CaseCrops,
    CaseTiles,
    CropSampler,
    LabelSpec,
    Preprocess,
    channel_statistics,
    crop_strip,
    prepare_case,
    split_cases,
    strip_split,
)
from geounet.data.samplers import RankShard
from geounet.data.sources import (
    SOURCES,
    CaseRef,
    CaseSource,
    FigshareMatSource,
    FolderSource,
    NiftiSource,
)
from geounet.errors import ConfigError, DataError
from geounet.io.labelmap import resolve_label_map
from geounet.io.write import default_colors
from geounet.models.bundle import ModelMeta
from geounet.models.registry import REGISTRY
from geounet.train.fit import lines_meta

log = logging.getLogger(__name__)


@dataclass
class PreparedCases:
    """Cases split and prepared, their windows and the model metadata."""

    train: list[Case]
    val: list[Case]
    test: list[CaseRef]
    patch: tuple[int, ...]
    context: int | None
    meta: ModelMeta
    val_patch: tuple[int, ...] = ()


def make_source(data: Any, *, validation: bool = False) -> CaseSource:
    """The :class:`CaseSource` a ``data`` config section names (its validation inputs
    ``data.val_images`` with ``validation``)."""
    entries = list(data.val_images if validation else data.images)
    if data.source == "folders":
        if len(entries) != 1 or not isinstance(entries[0], str):
            raise ConfigError(
                "config key 'data.images': the folders source takes one image folder "
                f"(data.labels: the mask folder), got {entries}"
            )
        masks = (data.val_labels or None) if validation else (data.labels or None)
        if validation and data.labels and not data.val_labels:
            raise ConfigError(
                "config key 'data.val_labels' is empty; name the mask folder of data.val_images "
                "(the training masks in data.labels do not belong to them)"
            )
        return FolderSource(
            entries[0],
            masks,
            image_pattern=data.image_pattern,
            mask_pattern=data.mask_pattern,
            mask_channel=data.mask_channel,
        )
    if data.source == "nifti":
        extra = [] if validation else list(data.cases)
        return NiftiSource(
            [*entries, *extra], modalities=data.modalities, label_file=data.label_file
        )
    if data.source == "figshare_mat":
        return FigshareMatSource(entries)
    raise ConfigError(f"config key 'data.source': unknown source {data.source!r}; use {SOURCES}")


def label_spec(data: Any, classes: list[str] | None = None) -> LabelSpec:
    """How raw labels become classes, from a ``data`` config section (and the class
    names, when ``data.classes`` was ``auto`` and resolved from the labels)."""
    classes = list(classes if classes is not None else data.classes)
    groups = list(data.label_groups.values()) if data.label_groups else None
    return LabelSpec(
        num_classes=len(classes),
        label_map=resolve_label_map(data.label_map, classes),
        groups=groups,
        ignore_values=list(data.ignore_values),
        threshold=data.mask_threshold,
        other=classes.index(data.other) if data.other in classes else None,
        names=tuple(classes),
    )


def preprocess_spec(data: Any) -> Preprocess:
    """Per-case preparation, from a ``data`` config section."""
    if data.normalization == "percentile":
        raise ConfigError(
            "config key 'data.normalization': 'percentile' is for GeoTIFF scenes; use "
            "case_percentile (each chip or volume on its own) or meanstd"
        )
    if data.normalization_mask and not data.normalization.startswith("case_"):
        raise ConfigError(
            "config key 'data.normalization_mask' needs case_zscore or case_percentile "
            f"normalization, not {data.normalization!r}"
        )
    kind = {"case_zscore": "zscore", "case_percentile": "percentile"}.get(
        data.normalization, "dataset"
    )
    return Preprocess(
        normalize=kind,
        mask=data.normalization_mask,
        percentiles=tuple(data.percentiles) if kind == "percentile" else (0.5, 99.5),
        spacing=tuple(data.spacing) if data.spacing else None,
        slice_axis=data.slice_axis,
        context=data.slice_context,
    )


def prepare_cases(config: Any) -> PreparedCases:
    """Discover, split, read and prepare the cases of a config; build the model metadata."""
    data, tcfg = config.data, config.train
    spec = REGISTRY.get(config.model.name)
    dims = spec.dims if spec is not None else 2
    source = make_source(data)
    train_refs, val_refs, test_refs = _split(config, source.discover())
    labels, prep = label_spec(data), preprocess_spec(data)
    train = [_prepared(source, r, prep, labels, dims) for r in train_refs]
    val = [_prepared(source, r, prep, labels, dims) for r in val_refs]
    for case in train:
        fg = int(((case.mask > 0) & (case.mask != IGNORE)).sum())
        log.debug("case %s: shape %s, %d foreground voxels", case.id, case.image.shape, fg)
    log.info(
        "%d training and %d validation cases (%s source), split by %s",
        len(train),
        len(val),
        data.source,
        "the given validation inputs"
        if data.val_images
        else "strips of every case"
        if data.split == "strips"
        else "group",
    )
    channels = {c.image.shape[0] for c in train + val}
    if len(channels) > 1:
        raise DataError(f"cases have different channel counts {sorted(channels)}")
    n_channels = channels.pop()
    context = None
    if dims == 2 and train[0].image.ndim == 4:
        context = data.slice_context
        n_channels *= 2 * context + 1
    patch = _patch(tcfg.tile_size, dims, train + val, context is not None)
    if prep.normalize == "dataset":
        mean, std = channel_statistics(train, seed=tcfg.seed)
        if context is not None:
            mean, std = _repeat(mean, 2 * context + 1), _repeat(std, 2 * context + 1)
    else:
        mean, std = [0.0] * n_channels, [1.0] * n_channels
    preprocess = {
        **prep.to_dict(),
        "modalities": list(data.modalities),
        "label_file": data.label_file,
        "mask_channel": data.mask_channel,
        "image_pattern": data.image_pattern,
        "mask_pattern": data.mask_pattern,
        "mask_threshold": data.mask_threshold,
        "label_map": {str(k): v for k, v in (label_spec(data).label_map or {}).items()},
        "label_groups": dict(data.label_groups or {}),
        "ignore_values": list(data.ignore_values),
        "rand_error": data.rand_error,
        "spacing_trained": list(train[0].spacing),
    }
    names = list(data.modalities) or [f"band_{i + 1}" for i in range(n_channels)]
    if context is not None and data.modalities:
        names = [f"{m}@{o:+d}" for m in data.modalities for o in range(-context, context + 1)]
    if len(names) != n_channels:
        names = [f"band_{i + 1}" for i in range(n_channels)]
    meta = ModelMeta(
        architecture=config.model.name,
        arguments=dict(config.model.arguments),
        in_channels=n_channels,
        out_channels=1 if len(data.classes) == 2 else len(data.classes),
        classes=list(data.classes),
        colors=[list(c) for c in (data.colors or default_colors(data.classes))],
        bands=names,
        mean=mean,
        std=std,
        tile_size=patch[-1],
        source=data.source,
        preprocess=preprocess,
        patch=list(patch),
        ground_resolution_m=data.resolution,
        lines=lines_meta(config),
    )
    # 2D validation sees whole chips and slices up to 512 px (fewer, larger windows with
    # full context); 3D validation uses the training patch
    val_patch = patch
    if dims == 2:
        val_patch = _patch(512, dims, val, context is not None)
    return PreparedCases(train, val, test_refs, patch, context, meta, val_patch)


def _prepared(source: CaseSource, ref: CaseRef, prep, labels, dims: int) -> Case:
    """A case read and prepared; only its strip when the split is by strips."""
    case = prepare_case(source.read(ref), prep, labels, dims)
    strip = ref.extra.get("strip")
    return case if strip is None else crop_strip(case, strip)


def case_loaders(config: Any, prepared: PreparedCases) -> tuple[DataLoader, DataLoader]:
    """Training loader (random windows, foreground oversampled) and validation loader
    (a grid of windows over every validation case)."""
    tcfg = config.train
    crops = CaseCrops(
        prepared.train,
        prepared.patch,
        length=tcfg.samples_per_epoch,
        seed=tcfg.seed,
        foreground_fraction=tcfg.foreground_fraction,
        context=prepared.context,
    )
    tiles = CaseTiles(prepared.val, prepared.val_patch, context=prepared.context)
    args = {
        "batch_size": tcfg.batch_size,
        "num_workers": tcfg.num_workers,
        "persistent_workers": tcfg.num_workers > 0,
    }
    log.info("%d validation windows of %s px", len(tiles), "x".join(map(str, prepared.val_patch)))
    return (
        DataLoader(
            crops,
            sampler=RankShard(CropSampler(tcfg.samples_per_epoch, tcfg.seed), even=True),
            **args,
        ),
        DataLoader(tiles, sampler=RankShard(SequentialSampler(tiles), even=False), **args),
    )


def _patch(tile: int | list[int], dims: int, cases: list[Case], sliced: bool) -> tuple[int, ...]:
    sizes = [int(tile)] * dims if isinstance(tile, int) else [int(t) for t in tile]
    if len(sizes) != dims:
        raise ConfigError(
            f"config key 'train.tile_size' has {len(sizes)} values; this {dims}D model needs "
            f"{dims} (or one)"
        )
    shapes = np.array([c.image.shape[2:] if sliced else c.image.shape[1:] for c in cases])
    largest = shapes.max(axis=0)
    # never larger than the largest case, rounded up to a multiple of 16 for the encoders
    return tuple(int(min(s, -(-int(n) // 16) * 16)) for s, n in zip(sizes, largest, strict=True))


def _repeat(values: list[float], k: int) -> list[float]:
    return [v for v in values for _ in range(k)]


def evaluation_refs(config: Any) -> list[CaseRef]:
    """The cases a config evaluates on: its test split, else its validation cases."""
    _, val, test = _split(config, make_source(config.data).discover())
    return test or val


def _split(config: Any, refs: list[CaseRef]) -> tuple[list, list, list]:
    """Training, validation and test cases: the explicit validation inputs
    (``data.val_images``) or ids (``data.val_cases``), else a split by group."""
    data = config.data
    if data.val_images:
        return refs, make_source(data, validation=True).discover(), []
    if data.val_cases:
        chosen = set(map(str, data.val_cases))
        val = [r for r in refs if r.id in chosen or r.group in chosen]
        groups = {r.group for r in val}
        unknown = chosen - {r.id for r in val} - groups
        if unknown:
            raise ConfigError(f"config key 'data.val_cases': no case {sorted(unknown)[:3]}")
        return [r for r in refs if r.group not in groups], val, []
    if data.split == "strips":
        return strip_split(refs, val_fraction=data.val_fraction, test_fraction=data.test_fraction)
    return split_cases(
        refs,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        seed=config.train.seed,
        ordered=data.split == "ordered",
    )
