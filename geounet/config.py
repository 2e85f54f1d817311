"""Training configuration: a YAML file validated up front, with ``--set key=value`` overrides.

Unknown keys and values of the wrong type are errors that name the key, raised before
any work starts. Relative paths are taken relative to the current directory.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from geounet.errors import ConfigError, InputFileNotFoundError
from geounet.io.atomic import write_yaml

_YAML11_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


_KINDS = {float: "a number", int: "a whole number", str: "a string", bool: "true or false"}

LOSSES = ("bce", "ce", "dice", "jaccard", "focal", "tversky", "lovasz", "cldice")


@dataclass
class DataConfig:
    """Where the imagery and labels are and how to read them."""

    # geotiff: georeferenced scenes; folders: image/mask chips (PNG, JPEG, TIFF);
    # nifti: medical volumes; figshare_mat: the brain-tumour .mat slices of Cheng et al.;
    # xbd: xView2 folders (images/*_pre_disaster.png, labels/*.json), georeferenced from
    # the labels' lng_lat and trained as pre/post GeoTIFF pairs
    source: Literal["geotiff", "folders", "nifti", "figshare_mat", "xbd"] = "geotiff"
    # each entry: one raster, or a list of co-registered rasters stacked as channels:
    # band files of one acquisition (stack: bands) or several dates (stack: dates)
    images: list[str | list[str]] = field(default_factory=list)
    stack: Literal["dates", "bands"] = "dates"
    dates: list[str | list[str]] = field(default_factory=list)  # per stacked date; [] = read
    # one vector file or mask raster for every scene, or one per scene
    labels: str | list[str] = ""
    label_attribute: str | None = None
    label_layer: str | None = None
    # class names (index = class id), or "auto": one class per label_attribute value
    classes: str | list[str] = field(default_factory=lambda: ["background", "building"])
    colors: list[list[int]] | None = None
    # raw label value (raster code or attribute value) -> class name or id
    label_map: dict[Any, Any] | None = None
    other: str | None = None  # class collecting values label_map does not list
    min_class_share: float = 0.0  # classes: auto: rarer values join data.other ("other")
    sparse: bool = False  # pixels outside every label polygon/point are not labelled
    class_field: str | None = None  # extra vector column holding the class name (crop_type)
    rgb_bands: list[int] | None = None  # model bands shown as RGB in figures (1-based)
    bands: list[int] | None = None
    # metres on the ground; None = the images' own (chips: their pixel size, for lengths)
    resolution: float | None = None
    # imagery coarser than data.resolution: upsample it (true) or train at its own pixel
    # size (false, with a warning)
    upsample: bool = False
    # meanstd / percentile: statistics of the training data, stored in the model;
    # case_zscore / case_percentile: each case (volume, slice, chip) normalized on its own
    normalization: Literal["meanstd", "percentile", "case_zscore", "case_percentile"] = "meanstd"
    percentiles: list[float] = field(default_factory=lambda: [2.0, 98.0])
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    # ---- chips, volumes and slices (sources other than geotiff)
    val_images: list[str | list[str]] = field(default_factory=list)  # explicit validation set
    val_labels: str | None = None  # folders: the mask folder of val_images
    # ordered: the last files/cases validate; strips: the end of every chip validates
    split: Literal["random", "ordered", "strips"] = "random"
    val_cases: list[str] = field(default_factory=list)  # case ids or patient/group ids
    image_pattern: str | None = None  # folders: e.g. "*_sat.jpg" (the * is the key)
    mask_pattern: str | None = None  # folders: e.g. "*_mask.png"
    mask_channel: int = 0  # channel of RGB masks holding the class
    mask_threshold: float | None = None  # raw > threshold is class 1 (e.g. 128)
    label_groups: dict[str, list[int]] | None = None  # class name -> raw values (nested ok)
    ignore_values: list[int | float | str] = field(default_factory=list)  # not trained on
    modalities: list[str] = field(default_factory=list)  # nifti: file globs per channel
    label_file: str | None = None  # nifti: label file glob inside a case folder
    cases: list[dict[str, Any]] = field(default_factory=list)  # nifti: {images: [...], label}
    normalization_mask: Literal["nonzero"] | None = None  # case statistics inside non-zero
    spacing: list[float] | None = None  # nifti: resample to this voxel spacing (mm)
    slice_axis: str | int = "axial"  # 2D models on volumes: axial or a voxel axis 0-2
    slice_context: int = 0  # 2.5D: neighbouring slices per side stacked as channels
    rand_error: bool = False  # evaluate: adapted Rand error of the regions (membranes)


@dataclass
class ModelConfig:
    """Which registered model to build and its arguments."""

    name: str = "unet"
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Optimisation, sampling and stopping."""

    tile_size: int | list[int] = 256  # a list gives a 3D patch, e.g. [96, 96, 64]
    batch_size: int = 8
    samples_per_epoch: int = 256
    max_epochs: int = 100
    max_minutes: float | None = None
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    augment: bool = True
    loss: dict[str, float] = field(default_factory=dict)  # e.g. {ce: 1, dice: 1}; {} = auto
    class_weights: list[float] | None = None
    ignore_index: int | None = None
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    schedule: Literal["plateau", "cosine", "none"] = "plateau"
    accumulate: int = 1
    oversample_classes: list[str] | None = None
    oversample_factor: float = 4.0
    foreground_fraction: float = 0.33  # chips/volumes: windows centred on foreground
    # exponential moving average of the weights (and batch-norm statistics), validated
    # and saved instead of the raw weights; null = off
    ema: float | None = None
    tensorboard: bool = False
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # data-parallel training (one process per device): devices per node and nodes;
    # "auto" takes them from the launcher (torchrun, srun), see docs/distributed.md
    devices: int | str = 1
    num_nodes: int | str = 1
    strategy: Literal["auto", "ddp"] = "auto"
    # compile the training step (torch.compile): auto = on GPUs, where it pays; on CPUs
    # it measured no faster (docs/inference.md, benchmarks/train_compile.py)
    compile: Literal["auto", "on", "off"] = "auto"


@dataclass
class AugmentConfig:
    """Training augmentation (applied when ``train.augment`` is true)."""

    flip: float = 0.5  # probability of a horizontal and of a vertical flip
    rotate90: float = 0.5  # probability of a random multiple of 90 degrees
    rotate: float = 0.0  # maximum degrees of a free rotation (0 = off)
    scale: list[float] | None = None  # e.g. [0.8, 1.25]; None = off
    elastic: float = 0.0  # probability of an elastic deformation
    brightness: float = 0.2  # maximum relative change
    contrast: float = 0.2
    gain: float = 0.1  # per-band relative change (colour shifts)
    saturation: float = 0.3  # maximum desaturation (3-band images)
    hue: float = 0.0  # maximum hue rotation, fraction of a turn (3-band images; 0.5 = any)
    noise: float = 0.03  # Gaussian noise, relative to each sample's standard deviation


@dataclass
class ObjectsConfig:
    """Countable objects (buildings, fields, nuclei) predicted one by one.

    With ``enabled`` the model learns where objects and their borders are (``target``:
    footprint / border / contact channels, or one more softmax class "boundary") and
    prediction splits touching objects by seeded watershed. Widths and areas are in
    metres and m² (pixels for chips and volumes without georeferencing).
    """

    enabled: bool = False
    # what the objects are, in outputs and reports (default: the object class of a
    # two-class task; "field" for target: boundary)
    name: str | None = None
    # footprint: footprint / border / contact channels (buildings, two classes);
    # boundary: background / boundary / object classes in one softmax, as Fields of the
    # World (fields, any number of crop classes)
    target: Literal["footprint", "boundary"] = "footprint"
    border_m: float = 0.6  # border band inside every object
    contact_m: float = 1.2  # pixels within this of two objects are "contact"
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # loss per channel
    mask_threshold: float = 0.5  # footprint probability of object pixels
    seed_threshold: float = 0.7  # footprint probability of seed pixels
    border_threshold: float = 0.4  # seeds avoid pixels more likely border than this
    contact_threshold: float = 0.4  # ... and contact
    min_seed_m2: float = 1.0
    min_area_m2: float = 2.0  # smaller objects are dropped


@dataclass
class LinesConfig:
    """Linear networks (roads): centre-line labels and vector output as a line network.

    With ``enabled``, LineString labels are buffered to ``width_m`` on the ground, and
    ``predict --vector`` skeletonizes the mask into a graph, prunes spurs, bridges gaps
    and writes LineStrings with ``length_m``. Lengths are in metres (pixels times
    ``data.resolution`` for chips without georeferencing; pixels when that is unset).
    """

    enabled: bool = False
    width_m: float = 6.0  # centre-line labels become roads this wide
    spur_m: float = 10.0  # dead-end branches shorter than this are pruned
    gap_m: float = 10.0  # line ends closer than this to another road are joined
    min_length_m: float = 10.0  # isolated pieces shorter than this are dropped
    simplify_m: float = 1.0  # Douglas-Peucker tolerance of the output lines
    tolerance_m: float = 3.0  # evaluation: buffer of completeness / correctness, APLS snap


@dataclass
class Config:
    """A whole training run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    objects: ObjectsConfig = field(default_factory=ObjectsConfig)
    lines: LinesConfig = field(default_factory=LinesConfig)
    run_dir: str = "runs/run"

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain data (for the run directory)."""
        return dataclasses.asdict(self)


def load_config(
    path: str | os.PathLike[str] | None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Read a YAML config, apply ``key=value`` overrides and validate everything.

    Args:
        path: The YAML file, or None to start from the defaults.
        overrides: Items like ``"train.max_epochs=5"``; values are parsed as YAML.

    Returns:
        The validated :class:`Config`.

    Raises:
        ConfigError: Unknown keys, wrong types or invalid values, naming the key.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise InputFileNotFoundError(f"{p}: config file not found")
        raw = read_yaml(p) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: the config must be a mapping of sections")
    for item in overrides:
        _apply_override(raw, item)
    config = _build(Config, raw, "")
    _check_values(config)
    return config


def read_yaml(path: Path) -> Any:
    """Parse a YAML file with plain values only (no tags that build objects).

    Raises:
        ConfigError: One line naming the file, the line and what to change.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); give a YAML config "
            "such as configs/buildings.yaml"
        ) from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a folder; give a YAML config file") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: {_yaml_problem(exc)}") from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong in a YAML text and what to change, in a few words."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    tag = re.search(r"tag '?tag:yaml\.org,2002:([^' ]+)", problem)
    if tag:
        return f"the tag !!{tag[1]} is not allowed; a config holds plain values only"
    if "found character '\\t'" in problem:
        return "a tab indents this line; indent YAML with spaces"
    return f"not valid YAML ({problem}); fix the syntax there"


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.max_epochs=5")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {item!r}: the value is not valid YAML ({_yaml_problem(exc)}); quote it"
        ) from exc
    node = raw
    *parents, leaf = key.strip().split(".")
    for part in parents:
        if node.get(part) is None:  # missing, or an empty section in the YAML file
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {part!r} is not a section")
    node[leaf] = value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the config"
    if raw is None and prefix:  # a section left empty in the YAML file ("train:")
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; "
            f"valid keys here: {', '.join(sorted(known))}"
        )
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, key + ".")
        else:
            values[name] = _coerce(value, hint, key)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key {key!r} must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            element = args[0] if args else None
            if isinstance(value, str) and (element is str or str in typing.get_args(element)):
                return [value]
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping, got {value!r}")
        if args and args[1] is float:  # e.g. loss weights
            return {k: _coerce(v, float, f"{key}.{k}") for k, v in value.items()}
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _YAML11_EXPONENT.fullmatch(value.strip()):
        # YAML 1.1 (PyYAML) reads exponents without a dot, such as 1e-4, as strings.
        value = float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {key!r} must be a finite number, got {value}")
    if hint is Any or (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        return value
    kind = _KINDS.get(hint, getattr(hint, "__name__", str(hint)))
    raise ConfigError(f"config key {key!r} must be {kind}, got {value!r}")


def _check_values(config: Config) -> None:
    data, train = config.data, config.train
    if data.label_groups:
        # nested label groups (BraTS regions) are classes of their own
        data.classes = ["background", *data.label_groups]
        if data.colors is not None and len(data.colors) != len(data.classes):
            data.colors = None
    checks = [
        (
            isinstance(data.classes, list) or data.classes == "auto",
            "data.classes",
            "must be a list of class names or 'auto' (one class per data.label_attribute value)",
        ),
        (0 < data.val_fraction < 1, "data.val_fraction", "must be between 0 and 1"),
        (0 <= data.test_fraction < 1, "data.test_fraction", "must be between 0 and 1"),
        (
            data.val_fraction + data.test_fraction < 0.9,
            "data.test_fraction",
            "val + test fractions leave too little for training",
        ),
        (0 <= data.min_class_share < 1, "data.min_class_share", "must be in [0, 1)"),
        (data.resolution is None or data.resolution > 0, "data.resolution", "must be > 0"),
        (
            train.tile_size >= 16
            if isinstance(train.tile_size, int)
            else bool(train.tile_size) and min(train.tile_size) >= 8,
            "train.tile_size",
            "must be at least 16 (3D patches: at least 8 on every axis)",
        ),
        (0 <= train.foreground_fraction <= 1, "train.foreground_fraction", "must be in [0, 1]"),
        (data.slice_context >= 0, "data.slice_context", "must be >= 0"),
        (
            data.spacing is None or (len(data.spacing) == 3 and min(data.spacing) > 0),
            "data.spacing",
            "must be three positive voxel sizes in mm",
        ),
        (
            data.rgb_bands is None or (len(data.rgb_bands) in (1, 3) and min(data.rgb_bands) >= 1),
            "data.rgb_bands",
            "must be one or three 1-based band numbers, e.g. [3, 2, 1]",
        ),
        (train.batch_size >= 1, "train.batch_size", "must be at least 1"),
        (train.samples_per_epoch >= 1, "train.samples_per_epoch", "must be at least 1"),
        (train.max_epochs >= 1, "train.max_epochs", "must be at least 1"),
        (train.learning_rate > 0, "train.learning_rate", "must be > 0"),
        (train.num_workers >= 0, "train.num_workers", "must be >= 0"),
        (
            train.devices == "auto" or (isinstance(train.devices, int) and train.devices >= 1),
            "train.devices",
            "must be a number of devices per node (1 or more) or 'auto'",
        ),
        (
            train.num_nodes == "auto"
            or (isinstance(train.num_nodes, int) and train.num_nodes >= 1),
            "train.num_nodes",
            "must be a number of nodes (1 or more) or 'auto'",
        ),
        (train.accumulate >= 1, "train.accumulate", "must be at least 1"),
        (train.oversample_factor >= 1, "train.oversample_factor", "must be >= 1"),
        (train.ema is None or 0 <= train.ema < 1, "train.ema", "must be in [0, 1) or null"),
        (0 <= config.augmentation.hue <= 0.5, "augmentation.hue", "must be in [0, 0.5]"),
        (
            len(data.percentiles) == 2 and 0 <= data.percentiles[0] < data.percentiles[1] <= 100,
            "data.percentiles",
            "must be [low, high] with 0 <= low < high <= 100",
        ),
        (
            train.max_minutes is None or train.max_minutes > 0,
            "train.max_minutes",
            "must be > 0",
        ),
    ]
    checks += _more_checks(config)
    for ok, key, message in checks:
        if not ok:
            raise ConfigError(f"config key {key!r} {message}")
    if data.classes == "auto":
        _check_auto_classes(config)
    else:
        check_classes(config)
    _check_objects(config)
    _check_lines(config)
    for name in train.loss:
        if name not in LOSSES:
            raise ConfigError(
                f"config key 'train.loss.{name}' is not a loss; use {', '.join(LOSSES)}"
            )


def _more_checks(config: Config) -> list[tuple[bool, str, str]]:
    """Ranges of the augmentation, loss and band keys: (ok, key, what to change)."""
    data, train, aug = config.data, config.train, config.augmentation
    checks = [
        (0 <= getattr(aug, k) <= 1, f"augmentation.{k}", "is a probability: must be in [0, 1]")
        for k in ("flip", "rotate90", "elastic")
    ]
    checks += [
        (0 <= getattr(aug, k) <= 1, f"augmentation.{k}", "must be in [0, 1] (a relative change)")
        for k in ("brightness", "contrast", "gain", "saturation")
    ]
    checks += [
        (0 <= aug.rotate <= 180, "augmentation.rotate", "must be in [0, 180] degrees"),
        (aug.noise >= 0, "augmentation.noise", "must be >= 0"),
        (
            aug.scale is None or (len(aug.scale) == 2 and 0 < aug.scale[0] <= aug.scale[1]),
            "augmentation.scale",
            "must be [low, high] with 0 < low <= high, e.g. [0.8, 1.25], or null",
        ),
        (train.weight_decay >= 0, "train.weight_decay", "must be >= 0"),
        (train.patience >= 1, "train.patience", "must be at least 1 (epochs)"),
        (train.seed >= 0, "train.seed", "must be >= 0"),
        (
            isinstance(train.tile_size, int) or len(train.tile_size) in (2, 3),
            "train.tile_size",
            "must be one size or a list of 2 or 3 sizes",
        ),
        (
            all(w >= 0 for w in train.loss.values())
            and (not train.loss or any(train.loss.values())),
            "train.loss",
            "weights must be >= 0 and not all 0, e.g. {ce: 1, dice: 1}",
        ),
        (
            train.class_weights is None or min(train.class_weights, default=0) >= 0,
            "train.class_weights",
            "must be >= 0",
        ),
        (
            train.ignore_index is None or train.ignore_index >= 0,
            "train.ignore_index",
            "must be a class id >= 0 or null",
        ),
        (
            data.bands is None or (bool(data.bands) and min(data.bands) >= 1),
            "data.bands",
            "must be 1-based band numbers, e.g. [4, 3, 2]",
        ),
        (
            data.bands is None or len(set(data.bands)) == len(data.bands),
            "data.bands",
            "repeats a band",
        ),
        (data.mask_channel >= 0, "data.mask_channel", "must be >= 0 (0 = the first channel)"),
        (
            data.colors is None
            or all(len(c) in (3, 4) and all(0 <= v <= 255 for v in c) for c in data.colors),
            "data.colors",
            "must be [r, g, b] per class with values 0-255",
        ),
        (bool(str(config.run_dir).strip()), "run_dir", "must name a folder"),
    ]
    return checks


def check_classes(config: Config) -> None:
    """Checks of the keys that depend on the class list (once ``classes: auto`` is
    resolved from the labels, training runs them again)."""
    data, train = config.data, config.train
    classes = data.classes
    if len(classes) < 2:
        raise ConfigError("config key 'data.classes' needs at least two classes")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"config key 'data.classes' repeats a name: {classes}")
    if data.colors is not None and len(data.colors) != len(classes):
        raise ConfigError("config key 'data.colors' needs one [r, g, b] per class")
    if train.class_weights is not None and len(train.class_weights) != len(classes):
        raise ConfigError("config key 'train.class_weights' needs one weight per class")
    unknown = sorted(set(train.oversample_classes or []) - set(classes))
    if unknown:
        raise ConfigError(f"config key 'train.oversample_classes': {unknown} not in data.classes")
    if data.other is not None and data.other not in classes:
        raise ConfigError(
            f"config key 'data.other': {data.other!r} is not in data.classes {classes}"
        )
    if data.label_map is not None:
        from geounet.io.labelmap import resolve_label_map

        resolve_label_map(data.label_map, classes)  # raises on unknown class names


def _check_auto_classes(config: Config) -> None:
    data, train = config.data, config.train
    if data.source not in ("geotiff", "xbd") or not data.label_attribute:
        raise ConfigError(
            "config key 'data.classes': 'auto' takes the classes from the vector attribute "
            "data.label_attribute; set it, or list the classes"
        )
    for key, value in (
        ("data.colors", data.colors),
        ("train.class_weights", train.class_weights),
        ("data.label_map", data.label_map),
    ):
        if value is not None:
            raise ConfigError(
                f"config key {key!r} needs the classes listed; with data.classes: auto "
                "the classes are only known from the labels"
            )


def _check_objects(config: Config) -> None:
    obj = config.objects
    if len(obj.weights) != 3 or min(obj.weights) < 0 or not any(w > 0 for w in obj.weights):
        raise ConfigError(
            "config key 'objects.weights' needs three weights >= 0 (footprint, border, contact)"
        )
    for key in ("border_m", "contact_m", "min_seed_m2", "min_area_m2"):
        if getattr(obj, key) < 0:
            raise ConfigError(f"config key 'objects.{key}' must be >= 0")
    for key in ("mask_threshold", "seed_threshold", "border_threshold", "contact_threshold"):
        if not 0 <= getattr(obj, key) <= 1:
            raise ConfigError(f"config key 'objects.{key}' must lie in [0, 1]")
    if not obj.enabled:
        return
    classes = config.data.classes
    if obj.target == "footprint" and (classes == "auto" or len(classes) != 2):
        raise ConfigError(
            "config key 'objects.enabled' with objects.target: footprint needs a two-class "
            f"task (background and the object class), got classes {classes}; "
            "objects.target: boundary takes several object classes (crop types)"
        )
    if obj.target == "boundary" and (
        config.data.sparse or (classes != "auto" and classes[0] != "background")
    ):
        raise ConfigError(
            "config key 'objects.target': boundary needs dense labels with class 0 "
            "'background' (pixels outside every object); data.sparse must be false"
        )
    if config.data.source not in ("geotiff", "xbd"):
        raise ConfigError(
            "config key 'objects.enabled': separate objects are trained from GeoTIFF scenes "
            f"only so far (data.source is {config.data.source!r})"
        )


def _check_lines(config: Config) -> None:
    lines = config.lines
    for key in ("width_m", "spur_m", "gap_m", "min_length_m", "simplify_m", "tolerance_m"):
        value = getattr(lines, key)
        if not value >= 0:
            raise ConfigError(f"config key 'lines.{key}' must be a number >= 0, got {value}")
    if lines.enabled and lines.width_m <= 0:
        raise ConfigError("config key 'lines.width_m' must be > 0 (the road width in metres)")
    if lines.enabled and config.objects.enabled:
        raise ConfigError(
            "config keys 'lines.enabled' and 'objects.enabled' exclude each other: a model "
            "outputs a line network or separate objects"
        )


_PATH_KEYS = ("images", "labels", "val_images", "val_labels")
# What to set each data key to, by data.source: the example of the preset-template message.
_EXAMPLES = {
    "geotiff": {"images": "[scene.tif]", "labels": "labels.gpkg", "val_images": "[val.tif]"},
    "folders": {"images": "[chips/images]", "labels": "chips/masks"},
    "nifti": {"images": "['cases/*']", "val_images": "['val_cases/*']"},
    "figshare_mat": {"images": "[mat_folder]"},
    "xbd": {"images": "[xview2_folder]"},
}


def missing_inputs(config: Config) -> dict[str, list[str]]:
    """The data keys naming files or folders that are not there (globs matching nothing),
    with those paths."""
    missing: dict[str, list[str]] = {}
    for key in _PATH_KEYS:
        value = getattr(config.data, key) or []
        entries = [value] if isinstance(value, str) else value
        for entry in entries:
            for p in [entry] if isinstance(entry, str) else entry:
                there = glob.glob(str(p)) if glob.has_magic(str(p)) else Path(p).exists()
                if not there:
                    missing.setdefault(key, []).append(str(p))
    return missing


def require_training_inputs(
    config: Config,
    source: str | os.PathLike[str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> None:
    """Check that a config names existing images and labels before training starts.

    A preset (``source``, the YAML file) whose own data paths are not there, because it
    runs outside the repository or without its sample data, is a template: the error says
    which keys to set, with an example command.
    """
    data = config.data
    if not data.images and not data.cases:
        what = (
            "list one or more GeoTIFFs"
            if data.source == "geotiff"
            else (f"name the {data.source} inputs")
        )
        raise ConfigError(f"config key 'data.images' is empty; {what}")
    if data.source == "geotiff" and not data.labels:
        raise ConfigError("config key 'data.labels' is empty; give a vector file or a mask raster")
    missing = missing_inputs(config)
    if not missing:
        return
    key, paths = next(iter(missing.items()))
    given = {item.partition("=")[0].strip() for item in overrides}
    if source is None or any(f"data.{k}" in given for k in missing):
        raise InputFileNotFoundError(f"{paths[0]}: file not found (check data.{key})")
    keys = [k for k in _PATH_KEYS if getattr(data, k) and f"data.{k}" not in given]
    examples = _EXAMPLES.get(data.source, {})
    command = " ".join(f"--set data.{k}={examples[k]}" for k in keys if k in examples)
    raise InputFileNotFoundError(
        f"{source}: data.{key} {paths[0]} is not here (relative paths are read from "
        f"{Path.cwd()}); the preset is a template: set {', '.join(f'data.{k}' for k in keys)} "
        f"to your data, e.g. geounet train {source} {command}"
    )


def dump_config(config: Config, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML (atomically)."""
    write_yaml(config.to_dict(), path)
