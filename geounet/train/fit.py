"""Train a model from a validated config into a run directory."""

from __future__ import annotations

import csv
import logging
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader
from torchgeo.datasets.utils import stack_samples

from geounet.config import Config, dump_config, require_training_inputs
from geounet.data.datasets import labelled_scenes
from geounet.data.splits import fitting_tile, grid_sampler, random_sampler, spatial_split
from geounet.data.stats import band_statistics
from geounet.errors import ConfigError
from geounet.io.raster import raster_info
from geounet.io.stack import stack_rasters
from geounet.io.write import default_colors
from geounet.models.bundle import ModelMeta, build_segmenter, save_bundle
from geounet.runtime import autocast_dtype, select_device
from geounet.train.task import BestModelSaver, SegmentationTask

log = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"


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


def fit(config: Config, *, progress: bool = True) -> TrainResult:
    """Train the model a config describes and save the best one.

    The run directory receives ``model.safetensors`` (best validation IoU),
    ``metrics.csv`` (one row per epoch) and ``config.yaml`` (the resolved config).

    Args:
        config: A validated configuration.
        progress: Show progress bars.

    Returns:
        A :class:`TrainResult`.
    """
    start = time.perf_counter()
    require_training_inputs(config)
    _quiet_lightning()
    data, tcfg = config.data, config.train
    L.seed_everything(tcfg.seed, verbose=False)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(config, run_dir / "config.yaml")

    scenes, timesteps = _stack_scenes(data.images, run_dir / "stacks")
    dataset = labelled_scenes(
        scenes,
        data.labels,
        classes=data.classes,
        res=_crs_resolution(scenes[0], data.resolution),
        bands=data.bands,
        class_attribute=data.label_attribute,
        label_layer=data.label_layer,
    )
    images = dataset.datasets[0]
    res = float(dataset.res[0])
    split = spatial_split(
        dataset,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        min_size=32 * res,
    )
    train_tile = fitting_tile(split.train, res, tcfg.tile_size)
    val_tile = fitting_tile(split.val, res, tcfg.tile_size)
    mean, std = band_statistics(
        images, split.train, size=train_tile, nodata=images.infos[0].nodata, seed=tcfg.seed
    )
    log.info(
        "training windows %d px, validation windows %d px, res %.3g", train_tile, val_tile, res
    )
    log.info("band mean %s std %s (training area)", _fmt(mean), _fmt(std))

    native = images.infos[0]
    meta = ModelMeta(
        architecture=config.model.name,
        arguments=dict(config.model.arguments),
        in_channels=len(images.band_indexes),
        out_channels=1 if len(data.classes) == 2 else len(data.classes),
        classes=list(data.classes),
        colors=[list(c) for c in (data.colors or default_colors(len(data.classes)))],
        bands=[images.all_bands[i - 1] for i in images.band_indexes],
        mean=mean,
        std=std,
        tile_size=train_tile,
        resolution=[float(r) for r in dataset.res],
        crs=images.crs.to_wkt(),
        timesteps=timesteps,
        band_indexes=list(data.bands) if data.bands else None,
        ground_resolution_m=native.ground_resolution * res / native.res[0],
    )
    model = build_segmenter(meta).use_channels_last()
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s %s: %.2f M parameters", meta.architecture, meta.arguments, n_params / 1e6)
    task = SegmentationTask(
        model,
        len(data.classes),
        learning_rate=tcfg.learning_rate,
        weight_decay=tcfg.weight_decay,
        augment=tcfg.augment,
        schedule=tcfg.schedule,
    )

    loader_args = {
        "batch_size": tcfg.batch_size,
        "num_workers": tcfg.num_workers,
        "collate_fn": stack_samples,
        "persistent_workers": tcfg.num_workers > 0,
    }
    train_loader = DataLoader(
        dataset,
        sampler=random_sampler(
            dataset,
            split.train,
            size=train_tile,
            length=tcfg.samples_per_epoch,
            seed=tcfg.seed,
        ),
        **loader_args,
    )
    val_loader = DataLoader(
        dataset, sampler=grid_sampler(dataset, split.val, size=val_tile), **loader_args
    )

    model_path = run_dir / MODEL_FILE

    def save(pl_module: SegmentationTask, metrics: dict[str, float]) -> None:
        meta.metrics = {k: round(v, 6) for k, v in metrics.items()}
        save_bundle(pl_module.model, meta, model_path)

    saver = BestModelSaver(save, monitor="val_iou")
    device = select_device(tcfg.device)
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else device.type,
        devices=[device.index or 0] if device.type == "cuda" else 1,
        precision=_lightning_precision(device, tcfg.precision),
        max_epochs=tcfg.max_epochs,
        max_time=timedelta(minutes=tcfg.max_minutes) if tcfg.max_minutes else None,
        callbacks=[
            saver,
            L.pytorch.callbacks.EarlyStopping("val_iou", mode="max", patience=tcfg.patience),
        ],
        logger=L.pytorch.loggers.CSVLogger(run_dir, name="", version=""),
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
    )
    with warnings.catch_warnings():
        for message in (
            ".*does not have many workers.*",
            ".*predefined order.*",
            ".*exists and is not empty.*",
            ".*LeafSpec.*",
        ):
            warnings.filterwarnings("ignore", message=message)
        trainer.fit(task, train_loader, val_loader)
        if saver.best is None:  # stopped by the time limit before any validation
            trainer.validate(task, val_loader, verbose=False)
    _merge_epoch_rows(run_dir / "metrics.csv")
    return TrainResult(
        run_dir=run_dir,
        model_path=model_path,
        metrics_path=run_dir / "metrics.csv",
        best_val_iou=float(saver.best or 0.0),
        best_epoch=int(saver.best_epoch or 0),
        epochs=trainer.current_epoch,
        seconds=time.perf_counter() - start,
    )


def _stack_scenes(entries: list, folder: Path) -> tuple[list[str], int]:
    """Scene paths, stacking list entries (pre/post, dates) into VRTs in ``folder``."""
    counts = {1 if isinstance(e, str) else len(e) for e in entries}
    if len(counts) > 1:
        raise ConfigError(
            "config key 'data.images' mixes stacks of different lengths "
            f"{sorted(counts)}; every scene needs the same number of dates"
        )
    scenes = [
        e if isinstance(e, str) else str(stack_rasters(e, folder / f"scene_{i}.vrt"))
        for i, e in enumerate(entries)
    ]
    return scenes, counts.pop()


def _crs_resolution(image: str, metres: float | None) -> tuple[float, float] | None:
    """The pixel size in the first image's CRS units that is ``metres`` on the ground."""
    if metres is None:
        return None
    info = raster_info(image)
    factor = metres / info.ground_resolution
    return (info.res[0] * factor, info.res[1] * factor)


def _quiet_lightning() -> None:
    """Keep Lightning's banner lines (GPU available, tips, ...) out of geounet's output.

    Lightning sets its loggers to INFO when first imported, so this runs after import.
    """
    if not log.isEnabledFor(logging.DEBUG):
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _merge_epoch_rows(path: Path) -> None:
    """Rewrite Lightning's metrics CSV (train and val on separate rows) as one row per epoch."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    merged: dict[str, dict[str, str]] = {}
    for row in rows:
        target = merged.setdefault(row["epoch"], {})
        target.update({k: v for k, v in row.items() if v != ""})
    fields = list(rows[0].keys())
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(merged.values())


def _lightning_precision(device: torch.device, precision: str) -> str:
    dtype = autocast_dtype(device, precision)
    if dtype is torch.bfloat16:
        return "bf16-mixed"
    if dtype is torch.float16:
        return "16-mixed"
    return "32-true"


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
