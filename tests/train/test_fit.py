"""End-to-end training on a tiny generated scene."""

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import building_scene

import geounet.api as api
from geounet.config import load_config
from geounet.errors import ConfigError, InputFileNotFoundError
from geounet.models.bundle import load_bundle, read_meta
from geounet.train import fit as fit_module
from geounet.train.fit import fit


def _config(tmp_path: Path, images: list[str], labels: str, **overrides: str):
    settings = {
        "data.images": images,
        "data.labels": labels,
        "data.val_fraction": 0.25,
        "model.arguments": {"width": 4, "depth": 2},
        "train.tile_size": 64,
        "train.batch_size": 4,
        "train.samples_per_epoch": 8,
        "train.max_epochs": 2,
        "train.device": "cpu",
        "train.precision": "fp32",
        "train.seed": 0,
        "run_dir": str(tmp_path / "run"),
    }
    settings.update(overrides)
    # JSON is YAML: each value parses back to itself
    return load_config(None, [f"{key}={json.dumps(value)}" for key, value in settings.items()])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("fit")
    img, labels, _ = building_scene(tmp_path, size=256, squares=16, square=16)
    config = _config(tmp_path, [str(img)], str(labels))
    return config, fit(config, progress=False)


def test_run_directory_contents(trained) -> None:
    config, result = trained
    run = Path(config.run_dir)
    assert result.run_dir == run
    assert result.model_path == run / "model.safetensors" and result.model_path.is_file()
    assert result.metrics_path == run / "metrics.csv" and result.metrics_path.is_file()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["max_epochs"] == 2
    assert saved["model"]["arguments"] == {"width": 4, "depth": 2}
    assert result.epochs == 2
    assert 0.0 <= result.best_val_iou <= 1.0
    assert result.best_epoch in (0, 1)


def test_metrics_csv_has_val_iou_per_epoch(trained) -> None:
    _, result = trained
    with open(result.metrics_path) as f:
        rows = list(csv.DictReader(f))
    assert "val_iou" in rows[0]
    values = [float(r["val_iou"]) for r in rows if r.get("val_iou")]
    assert len(values) == 2
    assert all(0.0 <= v <= 1.0 for v in values)
    assert max(values) == pytest.approx(result.best_val_iou, abs=1e-6)
    assert all(float(r["samples_per_s"]) > 0 for r in rows)  # training throughput per epoch


def test_bundle_metadata(trained) -> None:
    _, result = trained
    meta = read_meta(result.model_path)
    assert meta.classes == ["background", "building"]
    assert meta.out_channels == 1 and meta.in_channels == 3
    assert meta.architecture == "unet" and meta.arguments == {"width": 4, "depth": 2}
    assert meta.bands == ["band_1", "band_2", "band_3"]
    assert len(meta.mean) == len(meta.std) == 3
    # dark noise (20..60) with bright squares (200..250): the mean lies in between
    assert all(20 < m < 200 for m in meta.mean) and all(s > 1 for s in meta.std)
    assert meta.resolution == [1.0, 1.0]
    assert "32633" in meta.crs
    assert meta.tile_size == 64
    assert meta.metrics["val_iou"] == pytest.approx(result.best_val_iou, abs=1e-6)
    model, _ = load_bundle(result.model_path)
    assert model.mean.flatten().tolist() == pytest.approx(meta.mean)
    assert model.std.flatten().tolist() == pytest.approx(meta.std)


def test_missing_image_fails_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, labels, _ = building_scene(tmp_path, size=64, squares=1)

    def forbidden(*args, **kwargs):
        raise AssertionError("training data were opened")

    monkeypatch.setattr(fit_module, "labelled_scenes", forbidden)
    config = _config(tmp_path, [str(tmp_path / "missing.tif")], str(labels))
    with pytest.raises(InputFileNotFoundError, match=r"missing\.tif"):
        api.train(config, progress=False)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_empty_images_is_a_config_error(tmp_path: Path) -> None:
    config = _config(tmp_path, [], str(tmp_path / "labels.geojson"))
    with pytest.raises(ConfigError, match=r"data\.images"):
        api.train(config, progress=False)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"data.bands": [4]}, "scene.tif: data.bands [4] out of range; the scene has 3 bands"),
        ({"data.labels": "far"}, "far.geojson do not overlap the images {scene}"),
    ],
)
def test_data_errors_name_the_users_files_not_cached_copies(
    tmp_path: Path, overrides: dict, expected: str
) -> None:
    from geounet.errors import DataError

    img, labels, _ = building_scene(tmp_path, size=64, squares=2)
    if overrides.get("data.labels") == "far":
        import geopandas as gpd

        gdf = gpd.read_file(labels).to_crs(3857)
        gdf.geometry = gdf.translate(50_000, 0)
        gdf.to_file(tmp_path / "far.geojson")
        overrides = {"data.labels": str(tmp_path / "far.geojson")}
    # data.resolution resamples the scene into the run's cache first
    config = _config(tmp_path, [str(img)], str(labels), **{"data.resolution": 2.0, **overrides})
    with pytest.raises((DataError, ConfigError)) as info:
        fit(config, progress=False)
    message = str(info.value)
    assert expected.format(scene=img) in message
    assert "cache" not in message and "stacks" not in message


@pytest.mark.parametrize(
    ("metres", "upsample", "trained_at", "message"),
    [
        (
            0.5,
            False,
            1.0,
            "data.resolution 0.5 m is finer than the imagery (1 m): training at 1 m rather "
            "than upsampling",
        ),
        (0.5, True, 0.5, "resampling {scene} from 1 m to 0.5 m pixels"),
        (2.0, False, 2.0, "resampling {scene} from 1 m to 2 m pixels (data.resolution"),
    ],
)
def test_resolution_is_announced_and_never_an_upsampling_by_surprise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, metres, upsample, trained_at, message
) -> None:
    img, labels, _ = building_scene(tmp_path, size=384, squares=16, square=20)
    settings = {"data.resolution": metres, "data.upsample": upsample, "train.tile_size": 32}
    config = _config(tmp_path, [str(img)], str(labels), **settings)
    with caplog.at_level("INFO", logger="geounet"):
        prepared = fit_module.prepare(config, tmp_path / "run")
    assert prepared.meta.ground_resolution_m == pytest.approx(trained_at, rel=1e-3)
    assert message.format(scene=img) in caplog.text
    assert f"windows 32 px, of {trained_at:g} m pixels" in caplog.text


def test_resampling_of_a_stack_names_its_images(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    img, labels, _ = building_scene(tmp_path, size=384, squares=16, square=20)
    settings = {"data.resolution": 2.0, "data.stack": "dates", "train.tile_size": 32}
    config = _config(tmp_path, [[str(img), str(img)]], str(labels), **settings)
    with caplog.at_level("INFO", logger="geounet"):
        fit_module.prepare(config, tmp_path / "run")
    assert f"resampling {img} + {img} from 1 m to 2 m pixels" in caplog.text
    assert "stacks" not in caplog.text


def test_plain_progress_lines_only_when_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning.pytorch.callbacks import TQDMProgressBar

    from geounet.train.progress import LogLines

    config = _config(tmp_path, ["x.tif"], "y.geojson")
    for tty, expected in ((False, LogLines), (True, TQDMProgressBar)):
        monkeypatch.setattr(sys.stderr, "isatty", lambda tty=tty: tty, raising=False)
        trainer = fit_module.make_trainer(config, tmp_path, [], progress=True)
        assert type(trainer.progress_bar_callback) is expected
