"""Train a model from a validated config into a run directory."""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from torch.utils.data import DataLoader
from torchgeo.datasets import IntersectionDataset
from torchgeo.datasets.utils import stack_samples

from geounet.data.augment import build_augmentation
from geounet.data.datasets import labelled_scenes
from geounet.data.samplers import RankShard, oversampling_sampler
from geounet.data.splits import (
    SpatialSplit,
    fitting_tile,
    grid_sampler,
    random_sampler,
    spatial_split,
)
from geounet.data.stats import band_percentiles, band_statistics
from geounet.errors import (
    ConfigError,
    DataError,
    GeounetError,
    InputFileNotFoundError,
    TrainingError,
)
from geounet.io.atomic import atomic_output, write_yaml
from geounet.io.labelmap import IGNORE, LabelSpec
from geounet.io.labels import read_vector
from geounet.io.raster import RasterInfo, raster_info, resample_to
from geounet.io.stack import acquisition_date, stack_rasters, uniform_scene
from geounet.io.write import default_colors
from geounet.models.bundle import ModelMeta, build_segmenter, save_bundle
from geounet.runtime import (
    autocast_dtype,
    is_rank_zero,
    launcher_layout,
    select_device,
    use_compile_cache,
)
from geounet.train.losses import build_loss, build_object_loss
from geounet.train.progress import LogLines, ShortRunWarning, clock
from geounet.train.task import BestModelSaver, SegmentationTask, Throughput

if TYPE_CHECKING:  # configuration is read by geounet.api; fit takes the parsed sections
    from geounet.config import Config, TrainConfig

log = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
SPARSE_FACTOR = 100.0  # windows holding sparse labels are this much likelier to be drawn
LAST_FILE = "last.safetensors"


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    model_path: Path
    metrics_path: Path
    best_val_iou: float
    best_epoch: int
    epochs: int
    seconds: float
    global_rank: int = 0  # data-parallel runs: only rank 0 wrote the files and reports
    steps: int = 0  # optimisation steps

    def summary(self) -> str:
        """One line: epochs, steps, time, best validation IoU and where the model is."""
        return (
            f"trained {self.epochs} epochs ({self.steps} steps) in {clock(self.seconds)}: "
            f"best validation IoU {self.best_val_iou:.4f} (epoch {self.best_epoch}); "
            f"model {self.model_path}"
        )


@dataclass
class Prepared:
    """A config's data resolved: dataset, split, window sizes and model metadata."""

    dataset: IntersectionDataset
    split: SpatialSplit
    train_tile: int
    val_tile: int
    meta: ModelMeta
    sources: dict[str, str]  # scene path the dataset reads -> the user's raster (or stack)


def prepare(config: Config, run_dir: Path) -> Prepared:
    """Open the data, split it spatially, compute statistics and the model metadata.

    Deterministic for a config, so evaluation can rebuild the same split. Errors name
    the user's images, not the stacked or resampled copies in the run directory.
    """
    try:
        return _prepare(config, run_dir)
    except GeounetError as exc:
        text = _user_paths(str(exc), config.data.images, run_dir)
        if text == str(exc):
            raise
        raise type(exc)(text) from exc


def _user_paths(text: str, images: list, run_dir: Path) -> str:
    """``text`` with the run's stacked or resampled scene copies replaced by the images
    of ``data.images`` they were made from."""

    def name(match: re.Match) -> str:
        i = int(match[1])
        if i >= len(images):
            return match[0]
        entry = images[i]
        return entry if isinstance(entry, str) else " + ".join(map(str, entry))

    folders = "|".join(re.escape(str(run_dir / f)) for f in ("cache", "stacks"))
    return re.sub(rf"(?:{folders})/scene_(\d+)[\w.-]*", name, text)


def _prepare(config: Config, run_dir: Path) -> Prepared:
    data, tcfg = config.data, config.train
    if not isinstance(tcfg.tile_size, int):
        raise ConfigError("config key 'train.tile_size': GeoTIFF scenes take one window size")
    scenes, timesteps = _stack_scenes(data.images, run_dir / "stacks", data.stack)
    dates = _scene_dates(config, data.images) if data.stack == "dates" else None
    infos = [raster_info(s) for s in scenes]
    res = _training_resolution(infos, data.resolution, data.upsample)
    originals = scenes
    scenes = _resampled_scenes(scenes, infos, res, run_dir / "cache", data.images)
    first = raster_info(scenes[0])
    labels = label_files(config)
    classes, label_record = _resolve_classes(config, labels, first.crs)
    spec = LabelSpec.from_record(classes, label_record)
    pixel_m = first.ground_resolution * (res[0] / first.res[0] if res else 1.0)
    objects = _object_widths(config, pixel_m)
    dataset = labelled_scenes(
        scenes,
        labels,
        classes=classes,
        res=res,
        bands=data.bands,
        class_attribute=data.label_attribute,
        label_layer=data.label_layer,
        objects=objects,
        spec=spec,
        sparse=data.sparse,
        line_width_m=config.lines.width_m if config.lines.enabled else None,
    )
    images = dataset.datasets[0]
    _report_classes(dataset.datasets[1], classes, dense=not data.sparse, files=labels)
    nulls = getattr(dataset.datasets[1], "null_features", 0)
    if nulls:
        label_record["null_features_skipped"] = nulls
    res = float(dataset.res[0])
    split = spatial_split(
        dataset, val_fraction=data.val_fraction, test_fraction=data.test_fraction, min_size=32 * res
    )
    train_tile = fitting_tile(split.train, res, tcfg.tile_size)
    val_tile = fitting_tile(split.val, res, tcfg.tile_size)
    native = images.infos[0]
    sampling = {
        "size": train_tile,
        "nodata": images.nodata,
        "per_band": images.per_band_nodata,
        "seed": tcfg.seed,
    }
    clip_low = clip_high = None
    if data.normalization == "percentile":
        low, high = data.percentiles
        clip_low, clip_high = band_percentiles(images, split.train, low=low, high=high, **sampling)
        mean, std = clip_low, [h - lo for lo, h in zip(clip_low, clip_high, strict=True)]
    else:
        mean, std = band_statistics(images, split.train, **sampling)
    # missing band values get the normalization offset, as prediction gives them
    dataset.transforms.fill = torch.tensor(mean, dtype=torch.float32)
    log.info(
        "training windows %d px, validation windows %d px, of %.3g m pixels",
        train_tile,
        val_tile,
        pixel_m,
    )
    log.info("band offset %s scale %s (training area)", _fmt(mean), _fmt(std))
    if classes != data.classes:
        log.info("classes from %r: %s", data.label_attribute, ", ".join(classes))
    boundary = objects is not None and objects[0] == "boundary"
    if objects is None:
        out_channels = 1 if len(classes) == 2 else len(classes)
    else:
        out_channels = len(classes) + 1 if boundary else 3
    band_names = [images.all_bands[i - 1] for i in images.band_indexes]
    meta = ModelMeta(
        architecture=config.model.name,
        arguments=_model_arguments(config, timesteps),
        in_channels=len(images.band_indexes),
        out_channels=out_channels,
        classes=list(classes),
        colors=[list(c) for c in (data.colors or default_colors(classes))],
        bands=band_names,
        mean=mean,
        std=std,
        clip_low=clip_low,
        clip_high=clip_high,
        tile_size=train_tile,
        resolution=[float(r) for r in dataset.res],
        crs=images.crs.to_wkt(),
        timesteps=timesteps,
        band_indexes=list(data.bands) if data.bands else None,
        ground_resolution_m=native.ground_resolution * res / native.res[0],
        objects=_objects_meta(config, objects),
        stack=data.stack if timesteps > 1 or data.stack == "bands" else None,
        dates=dates,
        labels=label_record,
        display_bands=_display_bands(data.rgb_bands, band_names),
        lines=lines_meta(config),
    )
    sources = dict(zip(scenes, originals, strict=True))
    return Prepared(dataset, split, train_tile, val_tile, meta, sources)


def _report_classes(labels: Any, classes: list[str], *, dense: bool, files: list[str]) -> None:
    """Before training: refuse labels with no class to learn; warn of classes absent
    from the labels (the model cannot learn them)."""
    present = set(getattr(labels, "present", range(len(classes))))
    if dense:
        present.add(0)  # pixels outside every feature are background
    missing = [name for i, name in enumerate(classes) if i not in present]
    where = ", ".join(map(str, files))
    if len(present) < 2:
        only = f"only {classes[min(present)]!r}" if present else "no class"
        raise DataError(
            f"{where}: the labels hold {only} of classes {classes}; nothing to learn: check "
            "the files, data.label_attribute and data.label_map"
        )
    if missing:
        log.warning(
            "%s: no labelled pixel of %s; the model cannot learn %s: check data.classes, "
            "data.label_attribute and data.label_map",
            where,
            ", ".join(map(repr, missing)),
            "it" if len(missing) == 1 else "them",
        )


def _model_arguments(config: Config, timesteps: int) -> dict:
    """The model's arguments; multi-date architectures (siamese) get the date count."""
    from geounet.models.registry import REGISTRY

    arguments = dict(config.model.arguments)
    spec = REGISTRY.get(config.model.name)
    if spec is not None and spec.timesteps > 1:
        if timesteps < 2:
            raise ConfigError(
                f"config key 'model.name': {spec.name} compares dates; stack two or more "
                "(data.images: [[pre.tif, post.tif]])"
            )
        if config.objects.enabled and config.objects.target == "footprint":
            raise ConfigError(
                f"config key 'objects.target': {spec.name} outputs class probabilities; "
                "use objects.target: boundary (one object per building, each with a class)"
            )
        arguments.setdefault("timesteps", timesteps)
    return arguments


def label_files(config: Config) -> list[str]:
    """The label files of a GeoTIFF config: one for every scene, or one per scene."""
    labels = config.data.labels
    files = [labels] if isinstance(labels, str) else list(labels)
    if len(files) > 1 and len(files) != len(config.data.images):
        raise ConfigError(
            f"config key 'data.labels' lists {len(files)} files for {len(config.data.images)} "
            "scenes; give one label file for all scenes, or one per scene in the same order"
        )
    return files


def _resolve_classes(config: Config, labels: list[str], crs) -> tuple[list[str], dict]:
    """The class names (resolved from the labels for ``classes: auto``) and the label
    record stored in the model: attribute, value -> class mapping, sparse, ignored values."""
    data = config.data
    record: dict = {
        "attribute": data.label_attribute,
        "sparse": data.sparse,
        "ignore_values": list(data.ignore_values),
        "class_field": data.class_field,
    }
    if data.classes != "auto":
        classes = list(data.classes)
        if data.label_map is not None:
            record["map"] = {str(k): _class_name(v, classes) for k, v in data.label_map.items()}
        if data.other is not None:
            record["other"] = data.other
        return classes, record
    from geounet.io.labelmap import auto_classes

    values, areas = attribute_values(labels, data.label_attribute, data.label_layer, crs)
    other = data.other or "other"
    auto = auto_classes(
        values, areas, min_share=data.min_class_share, other=other, background=not data.sparse
    )
    grouped = sorted(k for k, v in auto.mapping.items() if v == other)
    if grouped:
        log.info(
            "%d rare %r values (under %.3g of the labelled area) grouped into %r",
            len(grouped),
            data.label_attribute,
            data.min_class_share,
            other,
        )
    unknown = sorted(set(config.train.oversample_classes or []) - set(auto.classes))
    if unknown:
        raise ConfigError(
            f"config key 'train.oversample_classes': {unknown} not among the classes found in "
            f"{data.label_attribute!r}: {auto.classes}"
        )
    record.update(
        {
            "map": auto.mapping,
            "other": other if grouped else None,
            "shares": _rounded(auto.shares),
        }
    )
    return list(auto.classes), record


def attribute_values(labels: list[str], attribute: str, layer: str | None, crs) -> tuple:
    """Each feature's ``attribute`` value and area (points count as area 1) over files."""
    import geopandas as gpd

    values, areas = [], []
    for path in labels:
        gdf = read_vector(path, layer=layer)
        if attribute not in gdf.columns:
            raise ConfigError(
                f"{path}: no attribute {attribute!r} for data.label_attribute; available: "
                f"{', '.join(map(str, gdf.columns))}"
            )
        gdf = gpd.GeoDataFrame(gdf).to_crs(crs)
        column = gdf[attribute]
        values += column.astype(object).where(column.notna(), None).tolist()
        area = gdf.geometry.area.to_numpy()
        areas += [a if a > 0 else 1.0 for a in area]
    return values, areas


def _class_name(target, classes: list[str]) -> str:
    return classes[target] if isinstance(target, int) and 0 <= target < len(classes) else target


def _rounded(shares: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 5) for k, v in shares.items()}


def _display_bands(rgb: list[int] | None, names: list[str]) -> list[int] | None:
    """0-based model channels to show as RGB (``data.rgb_bands`` are 1-based)."""
    if rgb is None:
        return None
    if max(rgb) > len(names):
        raise ConfigError(
            f"config key 'data.rgb_bands' {rgb}: the model has {len(names)} bands ({names})"
        )
    return [b - 1 for b in rgb]


def fit(config: Config, *, progress: bool = True, resume: bool = False) -> TrainResult:
    """Train the model a config describes and save the best one.

    The run directory receives ``model.safetensors`` (best validation IoU),
    ``last.safetensors`` (latest epoch), ``last.ckpt`` (full training state for
    ``resume``), ``metrics.csv`` (one row per epoch) and ``config.yaml``.

    Args:
        config: A validated configuration.
        progress: Show progress bars.
        resume: Continue the interrupted run in ``config.run_dir`` from ``last.ckpt``
            (model, optimizer, schedule, epoch, early stopping and best score).

    Returns:
        A :class:`TrainResult`.
    """
    start = time.perf_counter()
    _quiet_lightning()
    tcfg = config.train
    rank_zero = is_rank_zero()
    if not rank_zero:  # the other processes of a data-parallel run: rank 0 reports
        logging.getLogger("geounet").setLevel(logging.WARNING)
    L.seed_everything(tcfg.seed, verbose=False)
    run_dir = Path(config.run_dir)
    checkpoint = run_dir / "last.ckpt"
    if resume and not checkpoint.exists():
        raise InputFileNotFoundError(f"{checkpoint}: nothing to resume (no last.ckpt in the run)")
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero:
        write_yaml(dataclasses.asdict(config), run_dir / "config.yaml")

    previous_rows = _read_rows(run_dir / "metrics.csv") if resume else []
    ignore_index = IGNORE  # unlabelled pixels: nodata, ignored values, padding, sparse gaps
    if config.data.source == "geotiff":
        prepared = prepare(config, run_dir)
        train_loader, val_loader = _loaders(config, prepared)
    else:
        from geounet.train.cases import case_loaders, prepare_cases

        prepared = prepare_cases(config)
        train_loader, val_loader = case_loaders(config, prepared)
    meta = prepared.meta
    aug = config.augmentation
    if tcfg.augment and len(meta.patch or []) == 3 and (aug.rotate or aug.scale or aug.elastic):
        log.warning("augmentation.rotate, scale and elastic apply to 2D models only; ignored")
    model = build_segmenter(meta).use_channels_last()
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s %s: %.2f M parameters", meta.architecture, meta.arguments, n_params / 1e6)
    task = SegmentationTask(
        model,
        meta.out_channels if meta.boundary else len(meta.classes),
        loss=_loss(config, meta, ignore_index),
        optimizer=tcfg.optimizer,
        learning_rate=tcfg.learning_rate,
        weight_decay=tcfg.weight_decay,
        schedule=tcfg.schedule,
        max_epochs=tcfg.max_epochs,
        augment=build_augmentation(config.augmentation, channel_group=_channel_group(prepared))
        if tcfg.augment
        else None,
        ignore_index=ignore_index,
        seed=tcfg.seed,
        objects=meta.objects is not None and not meta.boundary,
        ema=tcfg.ema,
        compile_model=_compile_training(tcfg),
    )
    model_path = run_dir / MODEL_FILE

    def saver_for(path: Path):
        def save(pl_module: SegmentationTask, metrics: dict[str, float]) -> None:
            if not pl_module.trainer.is_global_zero:
                return
            meta.metrics = {k: round(v, 6) for k, v in metrics.items()}
            save_bundle(pl_module.inference_model, meta, path)

        return save

    saver = BestModelSaver(
        saver_for(model_path), monitor="val_iou", save_last=saver_for(run_dir / LAST_FILE)
    )
    trainer = make_trainer(config, run_dir, [saver, Throughput(), ShortRunWarning()], progress)
    _log_batch(tcfg, trainer.world_size)
    with warnings.catch_warnings():
        for message in (
            ".*does not have many workers.*",
            ".*predefined order.*",
            ".*exists and is not empty.*",
            ".*LeafSpec.*",
            ".*checkpoint.*",
            ".*sync_dist=True.*",  # val_iou is reduced across processes by the task
        ):
            warnings.filterwarnings("ignore", message=message)
        try:
            trainer.fit(
                task,
                train_loader,
                val_loader,
                ckpt_path=checkpoint if resume else None,
                weights_only=True if resume else None,
            )
        except TrainingError as exc:
            kept = (
                f"the best model so far stays in {model_path}"
                if model_path.exists()
                else "no model was saved"
            )
            used = str(trainer.precision).split("-")[0]
            precision = "" if used == "32" else f", train in fp32 (train.precision, now {used})"
            raise TrainingError(
                f"{exc}: lower train.learning_rate (now {tcfg.learning_rate:g}){precision}, or "
                f"check the imagery's nodata and data.normalization ({config.data.normalization})"
                f"; {kept}"
            ) from exc
        except SystemExit:
            if trainer.interrupted:  # Lightning turns Ctrl-C into sys.exit(1)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                hint = f"continue with: geounet train --resume {run_dir}"
                raise KeyboardInterrupt(hint if checkpoint.exists() else "") from None
            raise
        if saver.best is None:  # stopped by the time limit before any validation
            trainer.validate(task, val_loader, verbose=False)
    if trainer.is_global_zero:
        _merge_epoch_rows(run_dir / "metrics.csv", previous_rows)
    return TrainResult(
        run_dir=run_dir,
        model_path=model_path,
        metrics_path=run_dir / "metrics.csv",
        best_val_iou=float(saver.best or 0.0),
        best_epoch=int(saver.best_epoch or 0),
        epochs=trainer.current_epoch,
        seconds=time.perf_counter() - start,
        global_rank=trainer.global_rank,
        steps=trainer.global_step,
    )


def _log_batch(tcfg, world: int) -> None:
    """Report the batch one optimisation step sees and its learning rate."""
    total = tcfg.batch_size * world * tcfg.accumulate
    if world == 1 and tcfg.accumulate == 1:
        return
    parts = [f"{tcfg.batch_size} per process"]
    if world > 1:
        parts.append(f"{world} processes")
    if tcfg.accumulate > 1:
        parts.append(f"{tcfg.accumulate} accumulated steps")
    log.info(
        "effective batch %d windows (%s); learning rate %.3g (not scaled with the batch)",
        total,
        " x ".join(parts),
        tcfg.learning_rate,
    )


def _loss(config: Config, meta: ModelMeta, ignore_index: int | None) -> torch.nn.Module:
    tcfg = config.train
    if meta.objects is not None and not meta.boundary:
        return build_object_loss(
            tcfg.loss or None, config.objects.weights, ignore_index=ignore_index
        )
    weights = tcfg.class_weights
    if meta.boundary and weights is not None:  # the boundary class weighs as the mean class
        weights = [*weights, sum(weights) / len(weights)]
    return build_loss(
        tcfg.loss or None,
        num_classes=meta.out_channels if meta.boundary else len(meta.classes),
        class_weights=weights,
        ignore_index=ignore_index,
    )


def _object_widths(config: Config, pixel_m: float) -> tuple[str, int, int] | None:
    """The object target and its border and contact widths in training pixels, or
    ``None`` without objects."""
    from geounet.data.objects import metres_to_px

    obj = config.objects
    if not obj.enabled:
        return None
    border = metres_to_px(obj.border_m, pixel_m)
    if obj.target == "boundary":
        border = max(1, border)
        log.info("object target: boundary class %d px wide (%.3g m pixels)", border, pixel_m)
        return ("boundary", border, 0)
    contact = metres_to_px(obj.contact_m, pixel_m)
    log.info("object target: border %d px, contact %d px (%.3g m pixels)", border, contact, pixel_m)
    return ("footprint", border, contact)


def lines_meta(config: Config) -> dict | None:
    """The ``lines`` record of the model bundle (network settings), or None."""
    if not config.lines.enabled:
        return None
    record = dataclasses.asdict(config.lines)
    record.pop("enabled")
    return record


def _objects_meta(config: Config, widths: tuple[str, int, int] | None) -> dict | None:
    """The ``objects`` record of the model bundle (target widths, instance settings)."""
    if widths is None:
        return None
    record = dataclasses.asdict(config.objects)
    record.pop("enabled")
    record.pop("weights")
    record["target"], record["border_px"], record["contact_px"] = widths
    return record


def _loaders(config: Config, prepared: Prepared) -> tuple[DataLoader, DataLoader]:
    tcfg, dataset, split = config.train, prepared.dataset, prepared.split
    args = {
        "batch_size": tcfg.batch_size,
        "num_workers": tcfg.num_workers,
        "collate_fn": stack_samples,
        "persistent_workers": tcfg.num_workers > 0,
    }
    window = {"size": prepared.train_tile, "length": tcfg.samples_per_epoch, "seed": tcfg.seed}
    classes = prepared.meta.classes
    if tcfg.oversample_classes:
        rare = [classes.index(c) for c in tcfg.oversample_classes]
        sampler = oversampling_sampler(
            dataset, split.train, classes=rare, factor=tcfg.oversample_factor, **window
        )
    elif config.data.sparse:
        # sparse labels cover little of the scene: draw windows that hold some of them
        sampler = oversampling_sampler(
            dataset, split.train, classes=range(len(classes)), factor=SPARSE_FACTOR, **window
        )
    else:
        sampler = random_sampler(dataset, split.train, **window)
    val_sampler = grid_sampler(dataset, split.val, size=prepared.val_tile)
    return DataLoader(dataset, sampler=RankShard(sampler, even=True), **args), DataLoader(
        dataset, sampler=RankShard(val_sampler, even=False), **args
    )


def make_trainer(config: Config, run_dir: Path, callbacks: list, progress: bool) -> L.Trainer:
    """A Lightning trainer as the config asks: device(s), precision, time and epoch limits,
    accumulation, early stopping on validation IoU, CSV (and TensorBoard) logs and a
    ``last.ckpt`` for resumption, plus ``callbacks``.

    With several processes (``train.devices`` x ``train.num_nodes``) it trains with DDP;
    the samplers shard their windows by rank themselves (:class:`RankShard`), so
    Lightning's distributed sampler is off."""
    tcfg = config.train
    per_node, nodes = parallel_layout(tcfg.device, tcfg.devices, tcfg.num_nodes)
    device = select_device(tcfg.device)
    loggers = [L.pytorch.loggers.CSVLogger(run_dir, name="", version="")]
    if tcfg.tensorboard:
        loggers.append(L.pytorch.loggers.TensorBoardLogger(run_dir, name="tensorboard", version=""))
    last = LastCheckpoint(
        dirpath=run_dir, filename="last", save_top_k=0, save_last=True, enable_version_counter=False
    )
    if progress and not sys.stderr.isatty():
        callbacks = [*callbacks, LogLines()]
    parallel = per_node * nodes > 1
    one = [device.index or 0] if device.type == "cuda" else 1
    devices = per_node if parallel else one
    strategy = tcfg.strategy
    if strategy == "auto" and parallel:
        strategy = "ddp"
    return L.Trainer(
        accelerator="gpu" if device.type == "cuda" else device.type,
        devices=devices,
        num_nodes=nodes,
        strategy=strategy,
        sync_batchnorm=parallel and device.type == "cuda",  # CPU has no SyncBatchNorm
        use_distributed_sampler=False,
        precision=_lightning_precision(device, tcfg.precision),
        max_epochs=tcfg.max_epochs,
        max_time=timedelta(minutes=tcfg.max_minutes) if tcfg.max_minutes else None,
        accumulate_grad_batches=tcfg.accumulate,
        callbacks=[
            *callbacks,
            L.pytorch.callbacks.EarlyStopping("val_iou", mode="max", patience=tcfg.patience),
            last,
        ],
        logger=loggers,
        enable_checkpointing=True,
        enable_model_summary=False,
        enable_progress_bar=progress,  # bars on a terminal, plain lines in a log
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
    )


class LastCheckpoint(L.pytorch.callbacks.ModelCheckpoint):
    """``last.ckpt`` after every epoch, so that ``--resume`` continues a run that was
    killed (Lightning >= 2.5 writes the last checkpoint only beside a top-k one, which
    ``save_top_k=0`` never saves: the file would appear only when training ends)."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last(trainer)

    def _save_last(self, trainer: L.Trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def parallel_layout(device: str, devices: int | str, num_nodes: int | str) -> tuple[int, int]:
    """(processes per node, nodes) of a training run, ``auto`` resolved from the
    launcher (torchrun, srun), else from the GPUs present (one process on a CPU).

    Raises:
        ConfigError: The launcher started another number of processes than the config
            asks, or ``train.device`` names one GPU while several are asked for.
    """
    launched = launcher_layout()
    if devices == "auto":
        if launched is not None:
            devices = launched[0]
        elif select_device(device).type == "cuda" and ":" not in device:
            devices = torch.cuda.device_count()
        else:
            devices = 1
    if num_nodes == "auto":
        num_nodes = launched[1] if launched is not None else 1
    if launched is not None and launched != (devices, num_nodes):
        raise ConfigError(
            f"config key 'train.devices': the launcher started {launched[0]} process(es) per "
            f"node on {launched[1]} node(s), but train.devices is {devices} and "
            f"train.num_nodes {num_nodes}; set both to auto (or to those numbers)"
        )
    if devices * num_nodes > 1 and ":" in device:
        raise ConfigError(
            f"config key 'train.device': {device!r} names one device, but train.devices asks "
            f"for {devices} per node; use device: cuda (or auto) for several GPUs"
        )
    return int(devices), int(num_nodes)


def _stack_scenes(entries: list, folder: Path, kind: str = "dates") -> tuple[list[str], int]:
    """Scene paths, stacking list entries (band files, or dates) into VRTs in ``folder``;
    and the number of dates (1 for band stacks). Scenes whose bands differ in data type
    are read through a VRT of one type."""
    counts = {1 if isinstance(e, str) else len(e) for e in entries}
    if len(counts) > 1:
        what = "band files" if kind == "bands" else "dates"
        raise ConfigError(
            "config key 'data.images' mixes stacks of different lengths "
            f"{sorted(counts)}; every scene needs the same number of {what}"
        )
    scenes = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            scenes.append(str(uniform_scene(entry, folder / f"scene_{i}_uniform.vrt")))
        else:
            scenes.append(str(stack_rasters(entry, folder / f"scene_{i}.vrt", kind=kind)))
    return scenes, 1 if kind == "bands" else counts.pop()


def _scene_dates(config: Config, entries: list) -> list[list[str | None]] | None:
    """Acquisition dates of each scene's stacked files: ``data.dates`` or read from the
    files (tags, names); None for single-date scenes."""
    stacks = [e for e in entries if not isinstance(e, str)]
    if not stacks:
        return None
    given = config.data.dates
    if given:
        per_scene = [given] if all(isinstance(d, str) for d in given) else given
        if len(per_scene) == 1 and len(stacks) > 1:
            per_scene = per_scene * len(stacks)
        if len(per_scene) != len(stacks) or any(
            len(d) != len(s) for d, s in zip(per_scene, stacks, strict=True)
        ):
            raise ConfigError(
                "config key 'data.dates' needs one date per stacked file "
                f"({len(stacks[0])} per scene), e.g. [2016-05-12, 2016-07-21]"
            )
        return [[str(d) for d in dates] for dates in per_scene]
    return [[acquisition_date(p) for p in stack] for stack in stacks]


def _resampled_scenes(
    scenes: list[str],
    infos: list[RasterInfo],
    res: tuple[float, float] | None,
    folder: Path,
    names: list,
) -> list[str]:
    """Scenes whose pixel size differs from ``res`` by over 5 %, resampled once into
    ``folder`` (so sampling reads windows instead of resampling every one); each
    resampling is announced with the user's image (``names``, as in data.images)."""
    if res is None:
        return scenes
    out = []
    for i, (scene, info) in enumerate(zip(scenes, infos, strict=True)):
        native = info.res[0]
        if abs(native / res[0] - 1) <= 0.05:
            out.append(scene)
            continue
        entry = names[i] if i < len(names) else scene
        name = entry if isinstance(entry, str) else " + ".join(map(str, entry))  # a stack
        log.info(
            "resampling %s from %.3g m to %.3g m pixels (data.resolution; null keeps the "
            "imagery's own)",
            name,
            info.ground_resolution,
            info.ground_resolution * res[0] / native,
        )
        out.append(str(resample_to(scene, folder / f"scene_{i}_{res[0]:.6g}.tif", res)))
    return out


def _training_resolution(
    infos: list[RasterInfo], metres: float | None, upsample: bool
) -> tuple[float, float] | None:
    """The training pixel size in the first scene's CRS units: ``data.resolution``, but
    never finer than the coarsest scene unless ``data.upsample`` (a preset made for 0.3 m
    imagery does not silently upsample 0.5 m imagery)."""
    if metres is None:
        return None
    coarsest = max(info.ground_resolution for info in infos)
    if metres < coarsest / 1.05 and not upsample:
        log.warning(
            "data.resolution %.3g m is finer than the imagery (%.3g m): training at %.3g m "
            "rather than upsampling (set data.upsample: true to upsample, or "
            "data.resolution: null for the imagery's own)",
            metres,
            coarsest,
            coarsest,
        )
        metres = coarsest
    factor = metres / infos[0].ground_resolution  # in the first scene's CRS units
    return (infos[0].res[0] * factor, infos[0].res[1] * factor)


def _quiet_lightning() -> None:
    """Keep Lightning's banner lines (GPU available, tips, ...) out of geounet's output.

    Lightning sets its loggers to INFO when first imported, so this runs after import.
    """
    if not log.isEnabledFor(logging.DEBUG):
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _merge_epoch_rows(path: Path, previous: list[dict[str, str]] = ()) -> None:
    """Rewrite Lightning's metrics CSV (train and val on separate rows) as one row per
    epoch, after the rows of the run's earlier sessions (``previous``, when resuming)."""
    rows = _read_rows(path)
    if not rows:
        return
    merged: dict[str, dict[str, str]] = {}
    for row in [*previous, *rows]:
        merged.setdefault(row["epoch"], {}).update({k: v for k, v in row.items() if v != ""})
    fields = list(dict.fromkeys(k for row in [*previous, *rows] for k in row))
    with atomic_output(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(sorted(merged.values(), key=lambda r: int(r["epoch"])))


def _compile_training(tcfg: TrainConfig) -> bool:
    """Whether to compile the training step: ``train.compile`` on, or auto on a GPU."""
    if tcfg.compile == "auto":
        return select_device(tcfg.device).type == "cuda"
    if tcfg.compile == "on":
        use_compile_cache()
        log.info("compiling the training step (the first steps take longer)")
    return tcfg.compile == "on"


def _lightning_precision(device: torch.device, precision: str) -> str:
    dtype = autocast_dtype(device, precision)
    if dtype is torch.bfloat16:
        return "bf16-mixed"
    if dtype is torch.float16:
        return "16-mixed"
    return "32-true"


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _channel_group(prepared: object) -> int:
    """Channels per band: the context slices of one modality (2.5D) are one band."""
    context = getattr(prepared, "context", None)
    return 2 * context + 1 if context else 1
