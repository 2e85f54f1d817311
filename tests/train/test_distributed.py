"""Data-parallel training: rank shards of the samplers, and 2-process DDP runs (gloo, CPU)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import shapely
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import building_scene

from geounet.data.cases import CropSampler
from geounet.data.datasets import labelled_scenes
from geounet.data.samplers import RankShard, oversampling_sampler
from geounet.data.splits import grid_sampler, random_sampler
from geounet.errors import ConfigError, DataError
from geounet.train.fit import parallel_layout


def _shards(sampler, world: int, even: bool, monkeypatch) -> list[list]:
    shards = []
    for rank in range(world):
        monkeypatch.setattr(RankShard, "place", staticmethod(lambda r=rank: (r, world)))
        shard = RankShard(sampler, even=even)
        shard.set_epoch(3)
        items = list(shard)
        assert len(items) == len(shard)
        shards.append(items)
    return shards


def _key(query) -> tuple:
    return tuple((s.start, s.stop) for s in query) if isinstance(query, tuple) else query


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shard")
    img, labels, _ = building_scene(tmp, size=256, squares=16, square=16)
    dataset = labelled_scenes([str(img)], labels, classes=["background", "building"])
    xmin, xmax, ymin, ymax = (
        dataset.bounds[0].start,
        dataset.bounds[0].stop,
        *((dataset.bounds[1].start, dataset.bounds[1].stop)),
    )
    return dataset, [shapely.box(xmin, ymin, xmax, ymax)]


@pytest.mark.parametrize("kind", ["random", "oversampling", "crops"])
def test_training_shards_are_disjoint_and_make_up_one_process_draws(
    scene, kind: str, monkeypatch
) -> None:
    dataset, rois = scene
    if kind == "random":
        sampler = random_sampler(dataset, rois, size=32, length=41, seed=5)
    elif kind == "oversampling":
        sampler = oversampling_sampler(
            dataset, rois, size=32, length=41, classes=[1], factor=4, seed=5
        )
    else:
        sampler = CropSampler(41, seed=5)
    sampler.set_epoch(3)
    alone = [_key(q) for q in sampler]
    shards = [[_key(q) for q in s] for s in _shards(sampler, 2, True, monkeypatch)]
    assert len(shards[0]) == len(shards[1]) == 20  # equal steps: the odd one out is dropped
    assert not set(shards[0]) & set(shards[1])
    # interleaved: step k of two processes with batch b is step k of one with batch 2b
    assert [q for pair in zip(*shards, strict=True) for q in pair] == alone[:40]


def test_validation_shards_use_every_window_once(scene, monkeypatch) -> None:
    dataset, rois = scene
    sampler = grid_sampler(dataset, rois, size=48)
    alone = [_key(q) for q in sampler]
    shards = _shards(sampler, 3, False, monkeypatch)
    seen = [_key(q) for shard in shards for q in shard]
    assert sorted(seen) == sorted(alone) and len(seen) == len(alone) > 3


def test_too_few_validation_windows_for_the_processes(scene, monkeypatch) -> None:
    dataset, rois = scene
    sampler = grid_sampler(dataset, rois, size=256)  # one window
    monkeypatch.setattr(RankShard, "place", staticmethod(lambda: (1, 2)))
    with pytest.raises(DataError, match="validation windows for 2 processes"):
        list(RankShard(sampler, even=False))
    with pytest.raises(DataError, match="validation windows for 2 processes"):
        len(RankShard(sampler, even=False))  # Lightning asks for the length first
    with pytest.raises(DataError, match="samples_per_epoch 1 is below"):
        len(RankShard(CropSampler(1), even=True))


def test_layout_from_the_config_and_the_launcher(monkeypatch) -> None:
    for name in ("LOCAL_WORLD_SIZE", "WORLD_SIZE", "GROUP_RANK", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    assert parallel_layout("cpu", 1, 1) == (1, 1)
    assert parallel_layout("cpu", 2, 1) == (2, 1)
    assert parallel_layout("cpu", "auto", "auto") == (1, 1)
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NNODES", "2")
    assert parallel_layout("cpu", "auto", "auto") == (4, 2)
    with pytest.raises(ConfigError, match=r"train\.devices is 1"):
        parallel_layout("cpu", 1, 1)
    monkeypatch.delenv("SLURM_NTASKS")
    with pytest.raises(ConfigError, match="names one device"):
        parallel_layout("cuda:1", 2, 1)


# -- 2-process runs ---------------------------------------------------------------------

TRAIN = {
    "data": {"val_fraction": 0.25},
    "model": {"name": "unet", "arguments": {"width": 8, "depth": 2}},
    "train": {
        "tile_size": 64,
        "batch_size": 4,
        "samples_per_epoch": 32,
        "max_epochs": 2,
        "device": "cpu",
        "precision": "fp32",
        "augment": False,
    },
}


def _train(*args: str, torchrun: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m geounet -q train ARGS``: Lightning relaunches the same command for the
    second process (rank 1), as it does for the ``geounet`` script; or the same started
    as two processes by ``torchrun``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable]
    if torchrun:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    result = subprocess.run(
        [*launcher, "-m", "geounet", "-q", "train", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _rows(run: Path) -> list[dict[str, float]]:
    with (run / "metrics.csv").open() as f:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process with batch 4 for 2 epochs; two processes with batch 2 each, stopped
    after one epoch and resumed (``--resume``, under torchrun) for the second."""
    tmp = tmp_path_factory.mktemp("ddp")
    img, labels, _ = building_scene(tmp, size=256, squares=16, square=16)
    config = {**TRAIN, "data": {**TRAIN["data"], "images": [str(img)], "labels": str(labels)}}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    one, two = tmp / "one", tmp / "two"
    alone = _train(str(path), "--set", f"run_dir={one}")
    first = _train(
        str(path),
        "--set",
        f"run_dir={two}",
        "--set",
        "train.devices=2",
        "--set",
        "train.batch_size=2",
        "--set",
        "train.max_epochs=1",
    )
    saved = yaml.safe_load((two / "config.yaml").read_text())
    saved["train"]["max_epochs"] = 2  # as if the run had been stopped after one epoch
    saved["train"]["devices"] = "auto"  # from the launcher
    (two / "config.yaml").write_text(yaml.safe_dump(saved))
    resumed = _train("--resume", str(two), torchrun=True)
    return {"one": one, "two": two, "outputs": [alone, first, resumed], "config": path}


def test_ddp_run_completes_and_only_rank_0_reports(runs) -> None:
    two = runs["two"]
    for name in ("model.safetensors", "last.safetensors", "last.ckpt", "metrics.csv"):
        assert (two / name).is_file()
    assert [int(r["epoch"]) for r in _rows(two)] == [0, 1]  # resumed, not restarted
    for result in runs["outputs"]:
        assert result.stdout.count("best validation IoU") == 1  # rank 1 prints nothing
    leftovers = [p.name for p in two.iterdir() if ".partial" in p.name]
    assert not leftovers


def test_two_processes_match_one_with_the_same_global_batch(runs) -> None:
    one, two = _rows(runs["one"]), _rows(runs["two"])
    assert one[-1]["step"] == two[-1]["step"] == 15  # 8 steps per epoch in both
    for a, b in zip(one, two, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.1)
        assert b["val_iou"] == pytest.approx(a["val_iou"], abs=0.08)


def test_reduced_validation_iou_equals_one_process_over_all_windows(runs) -> None:
    """The val_iou two processes logged (confusion matrices summed across ranks) is the
    one a single process computes over all validation windows with the same weights."""
    import lightning as L

    from geounet.config import load_config
    from geounet.models.bundle import load_bundle
    from geounet.train.fit import _loaders, prepare
    from geounet.train.task import SegmentationTask

    two = runs["two"]
    model, meta = load_bundle(two / "last.safetensors")
    config = load_config(two / "config.yaml", [f"run_dir={two}", "train.devices=1"])
    prepared = prepare(config, two)
    _, val_loader = _loaders(config, prepared)
    task = SegmentationTask(model, len(meta.classes))
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    (scores,) = trainer.validate(task, val_loader, verbose=False)
    assert scores["val_iou"] == pytest.approx(meta.metrics["val_iou"], abs=1e-6)
    assert len(val_loader.sampler) > 2
    assert torch.is_tensor(task.confusion.matrix)
