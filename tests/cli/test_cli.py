"""End-to-end CLI tests: train -> predict -> vectorize on a generated scene, and errors."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

from geounet.cli import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import run_cli as _run
from _fixtures_ml import tiny_unet_bundle

from geounet.data.synthetic import make_building_scene


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    root = tmp_path_factory.mktemp("scenes")
    train = make_building_scene(root / "train.tif", root / "train.geojson", size=(320, 320), seed=3)
    test = make_building_scene(
        root / "test.tif",
        root / "test.geojson",
        size=(200, 232),
        seed=4,
        origin=(453000.0, 37000.0),
    )
    return train, test


def test_train_predict_vectorize(
    scenes: tuple, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train, test = scenes
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data:\n  images: [{train.image_path}]\n  labels: {train.labels_path}\n"
        "model:\n  arguments: {width: 4, depth: 2}\n"
        "train:\n  tile_size: 64\n  batch_size: 4\n  samples_per_epoch: 8\n  max_epochs: 2\n"
    )
    run_dir = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["train", str(config), "--set", f"run_dir={run_dir}"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    # Not a terminal: plain progress lines, no bar redraws; then one summary line.
    log = result.stderr
    assert "\r" not in log and "\x1b" not in log
    assert "training: up to 2 epochs of 2 steps" in log
    assert re.search(r"^epoch 0, loss [0-9.]+, val loss [0-9.]+, val IoU [0-9.]+ \(best", log, re.M)
    assert re.search(r"^epoch 1, loss", log, re.M)
    # 2 epochs of 2 steps: warned after the first epoch, with what to raise
    assert (
        "at this speed the run gets about 4 training steps in 2 epoch(s): too few for a "
        "useful model (aim for 50+ steps, 3+ epochs); raise train.max_epochs" in caplog.text
    )
    assert re.search(
        r"^trained 2 epochs \(4 steps\) in 0:\d\d: best validation IoU [0-9.]+ \(epoch \d\); "
        r"model .*model.safetensors$",
        result.stdout,
        re.M,
    )
    model = run_dir / "model.safetensors"
    assert model.exists()
    assert (run_dir / "metrics.csv").read_text().startswith("epoch")
    assert "max_epochs: 2" in (run_dir / "config.yaml").read_text()

    mask = tmp_path / "mask.tif"
    result = runner.invoke(
        cli,
        ["predict", str(model), str(test.image_path), "-o", str(mask)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"^test.tif: done, \d+ win in 0:\d\d$", result.stderr, re.M)
    assert "\r" not in result.stderr
    with rasterio.open(mask) as out, rasterio.open(test.image_path) as src:
        assert (out.crs, out.transform, out.shape) == (src.crs, src.transform, src.shape)
        assert json.loads(out.tags()["GEOUNET_CLASSES"]) == ["background", "building"]

    vectors = tmp_path / "buildings.geojson"
    result = runner.invoke(cli, ["vectorize", str(mask), "-o", str(vectors)])
    assert result.exit_code == 0, result.output
    collection = json.loads(vectors.read_text())
    assert collection["type"] == "FeatureCollection"
    for feature in collection["features"]:
        assert feature["properties"]["class_name"] == "building"
        assert feature["properties"]["area_m2"] > 0


def test_predict_several_scenes_into_directory(scenes: tuple, tmp_path: Path) -> None:
    train, test = scenes
    model = tiny_unet_bundle(tmp_path / "m.safetensors")
    out = tmp_path / "masks"
    result = CliRunner().invoke(
        cli,
        ["-q", "predict", str(model), str(train.image_path), str(test.image_path), "-o", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [  # each class map with its GDAL and QGIS styles
        "test_mask.qml",
        "test_mask.tif",
        "test_mask.tif.aux.xml",
        "train_mask.qml",
        "train_mask.tif",
        "train_mask.tif.aux.xml",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["predict", "missing.safetensors", "x.tif", "-o", "y.tif"], "model file not found"),
        (["vectorize", "missing.tif", "-o", "y.geojson"], "missing.tif"),
        (["train", "missing.yaml"], "config file not found"),
    ],
)
def test_user_errors_are_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    proc = _run(*[a if "missing" not in a else str(tmp_path / a) for a in args])
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("geounet: error:")
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr


def test_bad_config_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  max_epoch: 3\n")
    proc = _run("train", str(config))
    assert proc.returncode == 1
    assert "train.max_epoch" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("train", "predict", "vectorize", "demo"):
        assert name in result.output


def test_train_usage_names_config_as_required() -> None:
    result = CliRunner().invoke(cli, ["train", "--help"], prog_name="geounet")
    assert result.output.startswith(
        "Usage: geounet train CONFIG [--set KEY=VALUE]...\n   or: geounet train --resume RUN_DIR\n"
    )
    result = CliRunner().invoke(cli, ["train"], prog_name="geounet")
    assert result.exit_code == 2
    assert "give a CONFIG file (or --resume RUN_DIR)" in result.output


PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def _main(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    """``geounet ARGS`` in this process, as the console script runs it: (exit code, stderr)."""
    import warnings

    from geounet.cli import main

    monkeypatch.setattr(sys, "argv", ["geounet", *map(str, args)])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_a_preset_without_its_sample_data_says_which_keys_to_set(
    preset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)  # outside the repository: the sample data paths miss
    code, err = _main(["train", preset], monkeypatch, capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"geounet: error: {preset}: data.images ")
    assert f"relative paths are read from {tmp_path}" in lines[0]
    assert "the preset is a template: set data.images" in lines[0]
    assert f"e.g. geounet train {preset} --set data.images=" in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_message_names_the_missing_file_when_the_user_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    preset = PRESETS[0].with_name("buildings.yaml")
    args = ["train", preset, "--set", f"data.images=[{tmp_path}/mine.tif]"]
    code, err = _main(args, monkeypatch, capsys)
    assert code == 1
    assert err.strip() == f"geounet: error: {tmp_path}/mine.tif: file not found (check data.images)"


def test_plain_progress_lines_for_logs() -> None:
    import io

    from geounet.cli.options import PlainProgress

    stream = io.StringIO()
    bar = PlainProgress("scene.tif", "win", every=0.0, stream=stream)
    bar.total = 4
    for _ in range(4):
        bar.update(1)
    bar.close()
    bar.close()  # once
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ["scene.tif: 1/4 win (25 %), 0:00", "scene.tif: 2/4 win (50 %), 0:00"]
    assert lines[-1] == "scene.tif: done, 4 win in 0:00"
    assert len(lines) == 5


def test_bars_on_a_terminal_lines_in_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    import click
    from tqdm import tqdm

    from geounet.cli.options import PlainProgress, progress_bar

    ctx = click.Context(cli, obj={"verbosity": 0})
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(progress_bar(ctx, "x", "win"), PlainProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert isinstance(progress_bar(ctx, "x", "win"), tqdm)
    quiet = progress_bar(click.Context(cli, obj={"verbosity": -1}), "x", "win")
    assert isinstance(quiet, tqdm) and quiet.disable
