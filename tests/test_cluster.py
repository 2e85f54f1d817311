"""Prediction on a 2-worker Dask LocalCluster: the outputs of one process, reruns that
skip finished work, and a killed worker's task run again."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixtures_ml import run_cli, tiny_unet_bundle, write_geotiff

import geounet.api as gu
from geounet.cluster import job_signature
from geounet.errors import ConfigError, InputFileNotFoundError
from geounet.infer.bands import predict_band, scene_bands
from geounet.infer.scene import plan_scene
from geounet.models.bundle import load_bundle

OPTIONS = gu.PredictOptions(tile=64, overlap=16, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    model = tiny_unet_bundle(root / "model.safetensors")
    rng = np.random.default_rng(0)
    scenes = []
    for i, (h, w) in enumerate([(300, 220), (260, 300), (200, 200), (900, 260)]):
        scenes.append(write_geotiff(root / f"s{i}.tif", rng.integers(0, 255, (3, h, w), "uint8")))
    one = root / "one"
    # the workers' numerics: 1 torch thread each on 2 cores (other thread counts may pick
    # other kernels, whose last-bit differences can move a rounded probability by 1/255)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gu.predict_many(model, scenes, one, OPTIONS, probabilities=True)
    finally:
        torch.set_num_threads(threads)
    return root, model, scenes, one


@pytest.fixture(scope="module")
def client():
    with gu.cluster("local:2", threads=1) as client:
        yield client


def _same(a: Path, b: Path) -> None:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        np.testing.assert_array_equal(x.read(), y.read())
        assert x.transform == y.transform and x.crs == y.crs


def _outputs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".tif")


def test_many_scenes_and_a_banded_one_equal_one_process(data, client, caplog) -> None:
    root, model, scenes, one = data
    two = root / "two"
    results = gu.predict_many(
        model, scenes, two, OPTIONS, probabilities=True, client=client, band_rows=200
    )
    assert [r.path.name for r in results] == [f"s{i}_mask.tif" for i in range(4)]
    assert not any(r.reused for r in results)
    assert [p.name for p in _outputs(two)] == [p.name for p in _outputs(one)]
    for path in _outputs(one):
        _same(path, two / path.name)
    assert not list(two.glob(".*"))  # parts and staging files are gone
    # the QGIS and GDAL sidecars (legend, colours, category names) as one process writes
    sidecars = sorted(p.name for p in one.iterdir() if p.suffix != ".tif")
    assert {".qml", ".xml"} <= {Path(n).suffix for n in sidecars}
    assert sorted(p.name for p in two.iterdir() if p.suffix != ".tif") == sidecars
    for name in sidecars:
        assert (two / name).read_text() == (one / name).read_text()
    # a rerun finds every output finished and rewrites nothing
    stamps = {p: p.stat().st_mtime_ns for p in _outputs(two)}
    with caplog.at_level(logging.INFO, logger="geounet"):
        again = gu.predict_many(
            model, scenes, two, OPTIONS, probabilities=True, client=client, band_rows=200
        )
    assert all(r.reused for r in again) and [r.class_pixels for r in again] == [
        r.class_pixels for r in results
    ]
    assert {p: p.stat().st_mtime_ns for p in _outputs(two)} == stamps
    assert "4 of 4 outputs" in caplog.text


def test_finished_bands_of_an_interrupted_job_are_reused(data, client, caplog) -> None:
    root, model, scenes, one = data
    big, out = scenes[3], root / "three" / "s3_mask.tif"
    net, meta = load_bundle(model)
    job = job_signature(str(Path(model).resolve()), big, OPTIONS)
    plan = plan_scene(meta, big, OPTIONS)
    bands = scene_bands(plan, 200, out.parent / f".{out.name}.parts")
    predict_band(net, meta, str(big), bands[1], OPTIONS, job=job)  # done before a crash
    with caplog.at_level(logging.INFO, logger="geounet"):
        gu.predict_many(model, [big], out, OPTIONS, client=client, band_rows=200)
    assert f"1 of {len(bands)} bands already finished" in caplog.text
    _same(one / "s3_mask.tif", out)


def test_a_killed_worker_loses_only_its_task(data, client) -> None:
    root, model, scenes, one = data
    four = root / "four"
    done: dict = {}
    job = threading.Thread(
        target=lambda: done.update(
            results=gu.predict_many(model, scenes, four, OPTIONS, client=client, band_rows=200)
        )
    )
    job.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline:
        for address, keys in client.processing().items():
            if any("geounet-" in str(k) for k in keys):
                pid = client.run(os.getpid, workers=[address])[address]
                os.kill(pid, signal.SIGKILL)
                killed = address
                break
        time.sleep(0.05)
    job.join(timeout=240)
    assert killed is not None and not job.is_alive()
    assert len(done["results"]) == 4
    for path in _outputs(one):
        if not path.name.endswith("_proba.tif"):
            _same(path, four / path.name)


def test_cluster_spec_is_checked() -> None:
    with pytest.raises(ConfigError, match="local:N"), gu.cluster("remote:3"):
        pass


def test_a_missing_scene_is_one_clear_error(data, client, tmp_path: Path) -> None:
    _, model, _, _ = data
    with pytest.raises(InputFileNotFoundError, match=r"nope\.tif: file not found"):
        gu.predict_many(model, [tmp_path / "nope.tif"], tmp_path / "o.tif", client=client)


def test_cli_predicts_on_a_local_cluster(data, tmp_path: Path) -> None:
    _, model, scenes, one = data
    result = run_cli(
        "predict", str(model), str(scenes[0]), str(scenes[3]), "-o", str(tmp_path),
        "--tile-size", "64", "--overlap", "16", "--device", "cpu", "--precision", "fp32",
        "--cluster", "local:2", "--band-rows", "300",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "s3_mask.tif" in result.stdout and "INFO distributed" not in result.stderr
    with rasterio.open(one / "s3_mask.tif") as a, rasterio.open(tmp_path / "s3_mask.tif") as b:
        # local:2 gives each worker cores / 2 torch threads (1 here): same class map, but
        # on larger machines other kernels may flip a pixel whose probability is 0.5
        assert (a.read() == b.read()).mean() > 0.9999
    again = run_cli("predict", str(model), str(scenes[0]), "-o", str(tmp_path / "x.tif"),
                    "--band-rows", "10")  # fmt: skip
    assert again.returncode != 0 and "--band-rows splits scenes" in again.stderr
