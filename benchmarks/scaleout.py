"""Beyond one process: Dask prediction with 1 vs 2 workers, and DDP training with 1 vs 2
processes on the same global batch; figures side by side, as ratios.

On a 2-core machine every worker and every training process gets one thread, so the
ratios show how the work spreads, not a faster core. Every measurement runs apart (a
fresh cluster or fresh processes); nothing else should run meanwhile.

    .venv/bin/python benchmarks/scaleout.py [--scenes 4] [--size 2048] [--skip-train]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inference import _model, make_scene  # benchmarks/ is on sys.path as a script

MODEL = {"encoder": "resnet18"}  # as inference._model builds it
TILE, OVERLAP, BATCH = 512, 64, 4


def _bundle(path: Path) -> Path:
    """A U-Net over ResNet-18 (random weights: speed does not depend on them)."""
    from geounet.models.bundle import save_bundle

    model, meta = _model("{encoder: resnet18}")
    return save_bundle(model, meta, path)


def _worker_peak_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def predict_case(model: Path, scenes: list[Path], out: Path, workers: int, bands: int | None):
    """Seconds and worker peak RSS of one job on a fresh local cluster."""
    import geounet.api as gu

    options = gu.PredictOptions(tile=TILE, overlap=OVERLAP, batch_size=BATCH, precision="auto")
    with gu.cluster(f"local:{workers}", threads=1) as client:
        client.run(lambda: __import__("geounet.infer.scene"))  # imports: not the job's time
        start = time.perf_counter()
        gu.predict_many(model, scenes, out, options, client=client, band_rows=bands)
        seconds = time.perf_counter() - start
        peaks = client.run(_worker_peak_mb)
    return seconds, max(peaks.values())


def one_process(model: Path, scenes: list[Path], out: Path, threads: int) -> float:
    """Seconds of ``predict_many`` in this process with ``threads`` torch threads."""
    import torch

    import geounet.api as gu

    torch.set_num_threads(threads)
    options = gu.PredictOptions(tile=TILE, overlap=OVERLAP, batch_size=BATCH, precision="auto")
    start = time.perf_counter()
    gu.predict_many(model, scenes, out, options)
    return time.perf_counter() - start


def prediction(args: argparse.Namespace, tmp: Path) -> None:
    import rasterio

    model = _bundle(tmp / "model.safetensors")
    base = make_scene(tmp / "scene.tif", args.size)
    scenes = [base]
    for i in range(1, args.scenes):  # the same content under other names: other tasks
        scenes.append(tmp / f"scene_{i}.tif")
        os.link(base, scenes[-1])
    pixels = args.scenes * args.size**2
    big = make_scene(tmp / "big.tif", 2 * args.size)
    rows = []
    for label, workers in (("1 worker", 1), ("2 workers", 2)):
        seconds, peak = predict_case(model, scenes, tmp / f"w{workers}", workers, None)
        rows.append((f"{args.scenes} scenes, {label} x 1 thread", pixels, seconds, peak))
        print(rows[-1], flush=True)
    bands = args.size  # two bands of the 2x scene: one per worker, ~11 % halo
    for label, workers in (("1 worker", 1), ("2 workers", 2)):
        seconds, peak = predict_case(model, [big], tmp / f"b{workers}.tif", workers, bands)
        rows.append((f"1 scene in bands of {bands} rows, {label}", 4 * args.size**2, seconds, peak))
        print(rows[-1], flush=True)
    alone = one_process(model, [big], tmp / "alone.tif", 1)
    rows.append(("1 scene, one process (no cluster), 1 thread", 4 * args.size**2, alone, None))
    with (
        rasterio.open(tmp / "alone.tif") as a,
        rasterio.open(tmp / "b2.tif") as b,
    ):
        same = bool((a.read() == b.read()).all())
    print(f"\nDask prediction: U-Net {MODEL}, precision auto (fp32 without native bf16),")
    print(f"tile {TILE}, overlap {OVERLAP}, CPU")
    print("| run | MPix | seconds | MPix/s | peak RSS per worker (MB) |")
    print("|---|---:|---:|---:|---:|")
    for name, px, seconds, peak in rows:
        mem = f"{peak:.0f}" if peak else "-"
        print(f"| {name} | {px / 1e6:.1f} | {seconds:.1f} | {px / seconds / 1e6:.3f} | {mem} |")
    print("\n| ratio | value |")
    print("|---|---:|")
    print(f"| scenes: 2 workers / 1 worker throughput | **{rows[0][2] / rows[1][2]:.2f}** |")
    print(f"| bands: 2 workers / 1 worker throughput | **{rows[2][2] / rows[3][2]:.2f}** |")
    print(
        f"| bands with 1 worker / one process (halo and assembly cost) | {alone / rows[2][2]:.2f} |"
    )
    print(f"| banded class map identical to one process | {same} |")


def training(args: argparse.Namespace, tmp: Path) -> None:
    import yaml

    from geounet.data.synthetic import make_building_scene

    scene = make_building_scene(tmp / "train.tif", tmp / "train.geojson", size=(1024, 1024))
    config = {
        "data": {"images": [str(scene.image_path)], "labels": str(scene.labels_path)},
        "model": {"name": "unet", "arguments": {"width": 16, "depth": 4}},
        "train": {
            "tile_size": 128,
            "batch_size": 8,
            "samples_per_epoch": 128,
            "max_epochs": 3,
            "device": "cpu",
            "precision": "auto",
            "patience": 100,
        },
    }
    path = tmp / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    runs = {
        "1 process x 1 thread, batch 8": (1, 8, 1),
        "2 processes x 1 thread, batch 4 each (DDP, gloo)": (2, 4, 1),
        "1 process x 2 threads, batch 8": (1, 8, 2),
    }
    rates = {}
    for name, (devices, batch, threads) in runs.items():
        run_dir = tmp / f"run_{devices}_{threads}"
        cmd = [sys.executable, "-m", "geounet", "-q", "train", str(path)]
        cmd += ["--set", f"run_dir={run_dir}", "--set", f"train.devices={devices}"]
        cmd += ["--set", f"train.batch_size={batch}"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if result.returncode:
            raise SystemExit(result.stderr[-2000:])
        with (run_dir / "metrics.csv").open() as f:
            values = [float(r["samples_per_s"]) for r in csv.DictReader(f) if r["samples_per_s"]]
        rates[name] = statistics.median(values[1:])  # the first epoch warms up
    print("\nDDP training: U-Net width 16 depth 4, tile 128, global batch 8, precision auto, CPU")
    print("| run | samples/s (median epoch) |")
    print("|---|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} |")
    names = list(rates)
    print("\n| ratio | value |")
    print("|---|---:|")
    ddp = rates[names[1]] / rates[names[0]]
    print(f"| DDP 2 processes / 1 process (1 thread each) | **{ddp:.2f}** |")
    print(f"| DDP 2 x 1 thread / 1 process x 2 threads | {rates[names[1]] / rates[names[2]]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-predict", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("GDAL_CACHEMAX", "64")
    tmp = Path(tempfile.mkdtemp())
    print(f"{os.cpu_count()} cores")
    if not args.skip_predict:
        prediction(args, tmp)
    if not args.skip_train:
        training(args, tmp)


if __name__ == "__main__":
    main()
