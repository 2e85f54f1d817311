"""Training loop options: resume, optimizers, schedules, accumulation, logs, normalization."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import building_scene

from geounet.api import resume
from geounet.config import load_config
from geounet.errors import InputFileNotFoundError
from geounet.models.bundle import read_meta
from geounet.train.fit import fit


def _config(run: Path, img: Path, labels: Path, **overrides):
    settings = {
        "data.images": [str(img)],
        "data.labels": str(labels),
        "data.val_fraction": 0.25,
        "model.arguments": {"width": 4, "depth": 2, "batch_norm": True},
        "train.tile_size": 64,
        "train.batch_size": 4,
        "train.samples_per_epoch": 8,
        "train.max_epochs": 4,
        "train.device": "cpu",
        "train.precision": "fp32",
        "run_dir": str(run),
    }
    settings.update(overrides)
    return load_config(None, [f"{k}={json.dumps(v)}" for k, v in settings.items()])


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("scene")
    img, labels, _ = building_scene(tmp, size=256, squares=16, square=16)
    return img, labels


def _rows(run: Path) -> list[dict]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_resume_continues_exactly(scene, tmp_path: Path) -> None:
    img, labels = scene
    straight = fit(_config(tmp_path / "a", img, labels), progress=False)
    # the same run, interrupted after 2 of 4 epochs, then resumed from its directory
    fit(_config(tmp_path / "b", img, labels, **{"train.max_epochs": 2}), progress=False)
    config_b = tmp_path / "b" / "config.yaml"
    config_b.write_text(config_b.read_text().replace("max_epochs: 2", "max_epochs: 4"))
    resumed = resume(tmp_path / "b", progress=False)
    assert resumed.epochs == straight.epochs == 4
    a, b = (
        load_file(tmp_path / "a" / "last.safetensors"),
        load_file(tmp_path / "b" / "last.safetensors"),
    )
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    ious_a = [float(r["val_iou"]) for r in _rows(tmp_path / "a")]
    ious_b = [float(r["val_iou"]) for r in _rows(tmp_path / "b")]
    assert ious_b[-2:] == pytest.approx(ious_a[-2:], abs=1e-4)
    assert resumed.best_val_iou == pytest.approx(straight.best_val_iou, abs=1e-4)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileNotFoundError, match="not a geounet run directory"):
        resume(tmp_path, progress=False)


@pytest.mark.parametrize(
    "overrides",
    [
        {"train.optimizer": "adamw", "train.schedule": "cosine"},
        {"train.optimizer": "sgd", "train.schedule": "none", "train.accumulate": 2},
        {"train.loss": {"focal": 1.0, "dice": 0.5}, "train.tensorboard": True},
        {"data.normalization": "percentile", "train.augment": False},
    ],
)
def test_training_options(scene, tmp_path: Path, overrides: dict) -> None:
    img, labels = scene
    run = tmp_path / "run"
    result = fit(_config(run, img, labels, **{"train.max_epochs": 2, **overrides}), progress=False)
    assert (run / "model.safetensors").exists() and (run / "last.safetensors").exists()
    assert (run / "last.ckpt").exists()
    lrs = [float(r["lr"]) for r in _rows(run) if r.get("lr")]
    assert len(lrs) == 2
    if overrides.get("train.schedule") == "cosine":
        assert lrs[1] < lrs[0]
    if overrides.get("train.tensorboard"):
        assert any((run / "tensorboard").rglob("events.out.tfevents*"))
    meta = read_meta(result.model_path)
    if overrides.get("data.normalization") == "percentile":
        assert meta.clip_low is not None and all(
            h > lo for lo, h in zip(meta.clip_low, meta.clip_high, strict=True)
        )
        assert np.allclose(meta.mean, meta.clip_low)
    else:
        assert meta.clip_low is None


def test_ema_weights_are_validated_saved_and_resumed(scene, tmp_path: Path) -> None:
    img, labels = scene
    ema = {"train.ema": 0.8}
    straight = fit(_config(tmp_path / "a", img, labels, **ema), progress=False)
    checkpoint = torch.load(tmp_path / "a" / "last.ckpt", weights_only=True)["state_dict"]
    saved = load_file(tmp_path / "a" / "last.safetensors")
    averaged = {
        k.removeprefix("ema.module."): v for k, v in checkpoint.items() if "ema.module." in k
    }
    raw = {k.removeprefix("model."): v for k, v in checkpoint.items() if k.startswith("model.")}
    assert averaged and set(saved) <= set(averaged)
    for key in saved:  # the bundle holds the average, not the last raw weights
        torch.testing.assert_close(saved[key], averaged[key], msg=key)
    assert any(not torch.equal(saved[k], raw[k]) for k in saved if saved[k].is_floating_point())
    # an interrupted EMA run resumes to the same average
    fit(_config(tmp_path / "b", img, labels, **ema, **{"train.max_epochs": 2}), progress=False)
    config_b = tmp_path / "b" / "config.yaml"
    config_b.write_text(config_b.read_text().replace("max_epochs: 2", "max_epochs: 4"))
    resumed = resume(tmp_path / "b", progress=False)
    b = load_file(tmp_path / "b" / "last.safetensors")
    for key in saved:
        torch.testing.assert_close(saved[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert resumed.best_val_iou == pytest.approx(straight.best_val_iou, abs=1e-4)


def test_compiled_training_step(scene, tmp_path: Path, monkeypatch) -> None:
    """train.compile: on compiles the training step (inductor); weights keep their names."""
    monkeypatch.setenv("GEOUNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)  # set by earlier tests
    calls = []
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: calls.append(fn) or real(fn, **kw))
    img, labels = scene
    run = tmp_path / "run"
    config = _config(run, img, labels, **{"train.max_epochs": 1, "train.compile": "on"})
    result = fit(config, progress=False)
    assert len(calls) == 1 and (tmp_path / "cache" / "inductor").is_dir()
    from geounet.models.bundle import load_bundle

    model, _ = load_bundle(result.model_path)  # keys without torch.compile's prefix
    assert not any("_orig_mod" in k for k in model.state_dict())
    assert float(_rows(run)[0]["train_loss"]) > 0
    fresh = fit(_config(tmp_path / "eager", img, labels, **{"train.max_epochs": 1}), progress=False)
    assert len(calls) == 1  # auto: not on CPUs
    assert fresh.model_path.exists()


def test_nan_loss_stops_with_advice_and_keeps_the_last_good_model(
    scene, tmp_path: Path, monkeypatch
) -> None:
    import geounet.train.fit as fit_module
    from geounet.errors import TrainingError

    real_loss = fit_module._loss

    def poisoned(*args, **kwargs):  # finite for the first epoch (2 steps), then NaN
        loss, calls = real_loss(*args, **kwargs), []

        class Poisoned(torch.nn.Module):
            def forward(self, logits, target):
                value = loss(logits, target)
                calls.append(1)
                return value * float("nan") if len(calls) > 4 else value

        return Poisoned()

    monkeypatch.setattr(fit_module, "_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        fit(_config(run, *scene), progress=False)
    message = str(info.value)
    assert message.startswith("the training loss became nan at epoch 1, step 2: lower ")
    assert "train.learning_rate (now 0.001)" in message
    assert f"the best model so far stays in {run / 'model.safetensors'}" in message
    assert read_meta(run / "model.safetensors").metrics["epoch"] == 0


def test_classes_absent_from_the_labels_are_reported(caplog) -> None:
    from types import SimpleNamespace

    from geounet.errors import DataError
    from geounet.train.fit import _report_classes

    classes = ["background", "building", "road"]
    with caplog.at_level("WARNING", logger="geounet"):
        _report_classes(SimpleNamespace(present={1}), classes, dense=True, files=["l.gpkg"])
    assert "l.gpkg: no labelled pixel of 'road'; the model cannot learn it" in caplog.text
    with pytest.raises(DataError, match=r"l\.gpkg: the labels hold only 'background'"):
        _report_classes(SimpleNamespace(present=set()), classes, dense=True, files=["l.gpkg"])
    with pytest.raises(DataError, match="the labels hold only 'road'"):
        _report_classes(SimpleNamespace(present={2}), classes, dense=False, files=["l.gpkg"])
