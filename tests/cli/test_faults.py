"""Faults and hostile input through the command line: one error line naming the file,
no traceback, nothing left at the output path (see docs/faults.md for the table)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import TINY_TRAIN, building_scene, tiny_unet_bundle, write_geotiff

from geounet.cli import main

ONE_LINE = "geounet: error: "


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    scene, labels, _ = building_scene(root, size=256)
    model = tiny_unet_bundle(root / "model.safetensors")
    with rasterio.open(scene) as src:
        profile, data = src.profile, src.read()
    # a valid header over tile data that do not decode (a truncated or damaged download)
    profile.update(tiled=True, blockxsize=128, blockysize=128, compress="deflate")
    with rasterio.open(root / "corrupt.tif", "w", **profile) as dst:
        dst.write(data)
    raw = bytearray((root / "corrupt.tif").read_bytes())
    for i in range(len(raw) // 2, len(raw) - 64):
        raw[i] = (raw[i] * 7 + 13) % 256
    (root / "corrupt.tif").write_bytes(bytes(raw))
    from PIL import Image

    Image.fromarray(data[:, :64, :64].transpose(1, 2, 0)).save(root / "png.tif", format="PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(
            root / "nogt.tif", "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8",
            crs="EPSG:32633",
        ) as dst:  # fmt: skip
            dst.write(data[:, :64, :64])
    (root / "python.yaml").write_text("data: !!python/object/apply:os.system ['echo hi']\n")
    (root / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "tab.yaml").write_text("train:\n  max_epochs: 3\n\tbatch_size: 2\n")
    (root / "pickle.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    import torch

    save_file({"w": torch.zeros(2)}, str(root / "bare.safetensors"))
    _newer_bundle(model, root / "newer.safetensors")
    (root / "truncated.safetensors").write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    return {
        "scene": scene,
        "labels": labels,
        "model": model,
        **{p.stem: p for p in root.iterdir() if p.stem not in ("scene", "model")},
    }


def _newer_bundle(model: Path, out: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(model), framework="pt") as f:
        metadata = f.metadata()
    record = json.loads(metadata["geounet"])
    record.update(format_version=99, geounet_version="9.0")
    save_file(load_file(str(model)), str(out), metadata={**metadata, "geounet": json.dumps(record)})


def run_main(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    """``geounet ARGS`` in this process (its warning filters restored afterwards)."""
    monkeypatch.setattr(sys, "argv", ["geounet", "-q", *map(str, args)])
    code = 0
    with warnings.catch_warnings():
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    return code, capsys.readouterr().err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


HOSTILE = [
    # (name, command with {placeholders}, words the one error line holds)
    ("damaged tiles", "predict {model} {corrupt} -o {out}/m.tif", "corrupt.tif: cannot read"),
    ("PNG named .tif", "predict {model} {png} -o {out}/m.tif", "png.tif: raster has no CRS"),
    ("no geotransform", "predict {model} {nogt} -o {out}/m.tif", "nogt.tif: raster has a CRS but"),
    ("no geotransform", "vectorize {nogt} -o {out}/v.gpkg", "no geotransform"),
    ("YAML tag", "train {python}", "line 1, column 7: the tag !!python/object/apply:os.system"),
    ("binary config", "train {binary}", "binary.yaml: not a text file"),
    ("tab in YAML", "train {tab}", "tab.yaml, line 3, column 1: a tab indents this line"),
    ("pickle as model", "predict {pickle} {scene} -o {out}/m.tif", "not a safetensors model"),
    ("bare safetensors", "predict {bare} {scene} -o {out}/m.tif", "without geounet metadata"),
    ("newer format", "predict {newer} {scene} -o {out}/m.tif", "model format 99 (written by"),
    ("truncated model", "predict {truncated} {scene} -o {out}/m.tif", "truncated.safetensors: "),
    ("output = input", "predict {model} {scene} -o {scene}", "would overwrite the input"),
    (
        "overlap >= tile",
        "predict {model} {scene} -o {out}/m.tif --tile-size 64 --overlap 64",
        "overlap 64 px must be smaller than the window (64 px); use --overlap up to 32",
    ),
    ("folder is a file", "predict {model} {scene} -o {scene}/m.tif", "is a file, not a folder"),
]


@pytest.mark.parametrize(("what", "command", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_one_line(
    what: str, command: str, expected: str, files, tmp_path, monkeypatch, capsys
) -> None:
    before = {p: p.stat().st_mtime_ns for p in files.values()}
    args = command.format(out=tmp_path, **files).split()
    code, err = run_main(args, monkeypatch, capsys)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ONE_LINE), err
    assert expected in lines[0]
    assert not list(tmp_path.iterdir())  # nothing written, not even staging files
    assert {p: p.stat().st_mtime_ns for p in files.values()} == before  # inputs untouched


def test_library_warnings_do_not_reach_the_terminal(files, tmp_path) -> None:
    proc = _cli("predict", files["model"], files["png"], "-o", tmp_path / "m.tif")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"{ONE_LINE}{files['png']}: raster has no CRS; georeference it first "
        "(e.g. gdal_translate -a_srs EPSG:XXXX)"
    ]


def test_file_size_limit_gives_one_line_and_no_output(files, tmp_path) -> None:
    def limit() -> None:  # like `ulimit -f 64` in the shell
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    big = write_geotiff(tmp_path / "big.tif", np.zeros((3, 600, 600), np.uint8))
    out = tmp_path / "out"
    proc = _cli("predict", files["model"], big, "-o", out / "m.tif", preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr
    # libtiff itself prints "_tiffWriteProc: File too large." before geounet's line
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"{ONE_LINE}{out / 'm.tif'}: could not write (the file-size limit was reached "
        "(ulimit -f): 64 KiB); nothing was left at this path"
    )
    assert list(out.iterdir()) == []


def test_ctrl_c_and_kill_leave_no_output(files, tmp_path) -> None:
    big = write_geotiff(tmp_path / "big.tif", np.zeros((3, 1600, 1600), np.uint8))
    out = tmp_path / "out"
    slow = ["--tile-size", "64", "--overlap", "16", "--compile", "off"]
    args = ("predict", files["model"], big, "-o", out / "m.tif", *slow)
    # Ctrl-C: stops within seconds, one line, nothing at the output path
    proc = _start(*args)
    _wait_for(lambda: out.exists() and leftovers(out), proc)
    proc.send_signal(signal.SIGINT)
    start = time.perf_counter()
    _, err = proc.communicate(timeout=30)
    assert time.perf_counter() - start < 10
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "geounet: interrupted"
    assert not (out / "m.tif").exists() and leftovers(out) == []
    # kill -9: only staging files remain, and the next run to that folder removes them
    proc = _start(*args)
    _wait_for(lambda: leftovers(out), proc)
    proc.kill()
    proc.wait()
    assert not (out / "m.tif").exists() and leftovers(out)
    proc = _cli("predict", files["model"], files["scene"], "-o", out / "small.tif")
    assert proc.returncode == 0, proc.stderr
    assert leftovers(out) == []
    with rasterio.open(out / "small.tif") as src:
        assert src.read(1).shape == (256, 256)


def test_train_resumes_after_kill_as_if_never_stopped(files, tmp_path) -> None:
    from geounet.api import resume, train

    config = tmp_path / "c.yaml"
    config.write_text(
        f"data:\n  images: [{files['scene']}]\n  labels: {files['labels']}\n"
        "model:\n  arguments: {width: 4, depth: 2}\n"
    )
    sets = [*TINY_TRAIN, "train.max_epochs=5", "train.samples_per_epoch=32"]
    straight = train(config, [*sets, f"run_dir={tmp_path / 'a'}"], progress=False)
    run = tmp_path / "b"
    args = [a for s in [*sets, f"run_dir={run}"] for a in ("--set", s)]
    proc = _start("train", config, *args)
    _wait_for(lambda: (run / "last.ckpt").exists(), proc)
    proc.kill()
    proc.wait()
    resumed = resume(run, progress=False)
    assert resumed.epochs == straight.epochs == 5
    assert resumed.best_val_iou == pytest.approx(straight.best_val_iou, abs=1e-4)
    rows = (run / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    assert leftovers(run) == []


def test_ctrl_c_stops_training_with_a_resume_hint(files, tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"data:\n  images: [{files['scene']}]\n  labels: {files['labels']}\n"
        "model:\n  arguments: {width: 4, depth: 2}\n"
    )
    run = tmp_path / "run"
    sets = [*TINY_TRAIN, "train.max_epochs=100", f"run_dir={run}"]
    proc = _start("train", config, *[a for s in sets for a in ("--set", s)])
    _wait_for(lambda: (run / "last.ckpt").exists(), proc)
    proc.send_signal(signal.SIGINT)
    start = time.perf_counter()
    _, err = proc.communicate(timeout=60)
    assert time.perf_counter() - start < 10
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == (
        f"geounet: interrupted; continue with: geounet train --resume {run}"
    )


def _cli(*args: object, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from geounet.cli import main; main()", "-q", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def _start(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from geounet.cli import main; main()", "-q", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # a shell's background job (nohup ... &) ignores SIGINT, and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"finished before the signal: {proc.stderr.read()}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_bug_is_one_line_with_its_traceback_saved(tmp_path, monkeypatch, capsys) -> None:
    import geounet.api

    def broken(*args, **kwargs):
        raise TypeError("boom")

    monkeypatch.setenv("GEOUNET_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(geounet.api, "list_models", broken)
    code, err = run_main(["models"], monkeypatch, capsys)
    assert code == 1
    (line,) = err.strip().splitlines()
    report = next((tmp_path / "crashes").iterdir())
    assert line == (
        f"geounet: internal error: TypeError: boom; the traceback is in {report} (rerun with "
        "-vv to see it; please report it)"
    )
    assert "Traceback (most recent call last)" in report.read_text()
