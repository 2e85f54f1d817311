"""Scene inference benchmark: streaming `predict_scene` against the bare model, bf16 against
fp32, peak memory on 4096^2 and 16384^2 scenes, and MONAI's sliding_window_inference.

Every case runs in a fresh process (peak RSS is per process). Scenes are generated
(tiles of the sample-scene generator) into a temporary folder.

    .venv/bin/python benchmarks/inference.py [--big 16384] [--model '{encoder: resnet18}']
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _rss import peak_rss_mb  # benchmarks/ is on sys.path when run as a script

TILE, OVERLAP, BATCH = 512, 64, 4


def make_scene(path: Path, size: int) -> Path:
    """A size x size RGB scene: the generator's 2048^2 scene repeated, written in bands."""
    import numpy as np
    import rasterio

    from geounet.data.synthetic import make_building_scene

    base = make_building_scene(
        path.with_suffix(".base.tif"), path.with_suffix(".geojson"), size=(2048, 2048), seed=5
    )
    with rasterio.open(base.image_path) as src:
        block = src.read()
        profile = src.profile | {"width": size, "height": size, "BIGTIFF": "IF_SAFER"}
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, 2048):
            rows = min(2048, size - row)
            band = np.tile(block[:, :rows], (1, 1, -(-size // 2048)))[:, :, :size]
            dst.write(band, window=rasterio.windows.Window(0, row, size, rows))
    return path


def _model(arguments: str):
    """A trained bundle (a .safetensors path) or a random U-Net with these arguments."""
    if arguments.endswith(".safetensors"):
        from geounet.models.bundle import load_bundle

        return load_bundle(arguments)
    import yaml

    from geounet.models.bundle import ModelMeta, build_segmenter

    meta = ModelMeta(
        architecture="unet",
        arguments=yaml.safe_load(arguments),
        in_channels=3,
        out_channels=1,
        classes=["background", "building"],
        colors=[[0, 0, 0], [255, 0, 0]],
        bands=["red", "green", "blue"],
        mean=[120.0] * 3,
        std=[40.0] * 3,
        tile_size=TILE,
    )
    import torch

    torch.manual_seed(0)
    return build_segmenter(meta).eval(), meta


def case(kind: str, scene: str, precision: str, arguments: str, out: str) -> dict:
    """One measurement (in a child process)."""
    import numpy as np
    import rasterio
    import torch

    from geounet.infer.scene import PredictOptions, predict_scene

    model, meta = _model(arguments)
    with rasterio.open(scene) as src:
        height, width = src.shape
    start = time.perf_counter()
    if kind == "geounet":
        options = PredictOptions(
            tile=TILE, overlap=OVERLAP, batch_size=BATCH, device="cpu", precision=precision
        )
        predict_scene(model, meta, scene, out, options)  # resamples if trained at another res
    elif kind == "bare":
        # the same windows through the same model on in-memory tensors, no I/O, no blending
        from geounet.io.windows import window_starts

        model = model.use_channels_last()
        x = torch.rand(BATCH, 3, TILE, TILE) * 255
        n = len(window_starts(height, TILE, OVERLAP)) * len(window_starts(width, TILE, OVERLAP))
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"),
        ):
            for _ in range(-(-n // BATCH)):
                model(x)
    elif kind == "monai":
        from monai.inferers import sliding_window_inference

        model = model.use_channels_last()
        with rasterio.open(scene) as src:
            image = torch.from_numpy(src.read().astype(np.float32))[None]
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"),
        ):
            probs = sliding_window_inference(
                image,
                (TILE, TILE),
                BATCH,
                lambda b: torch.sigmoid(model(b).float()),
                overlap=OVERLAP / TILE,
                mode="gaussian",
            )
        with rasterio.open(scene) as src:
            profile = src.profile | {"count": 1, "compress": "deflate"}
        with rasterio.open(out, "w", **profile) as dst:
            dst.write((probs[0, 0] > 0.5).numpy().astype("uint8"), 1)
    seconds = time.perf_counter() - start
    return {
        "kind": kind,
        "precision": precision,
        "pixels": height * width,
        "seconds": seconds,
        "mpix_s": height * width / seconds / 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }


def run(kind: str, scene: Path, precision: str, arguments: str, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--case", kind, str(scene), precision, arguments, str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def agreement(a: Path, b: Path) -> float:
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        return float((x.read(1) == y.read(1)).mean())


def main() -> None:
    """Run the cases and print Markdown tables with ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--big", type=int, default=16384, help="0 skips the big scene")
    parser.add_argument(
        "--model",
        default="{encoder: resnet18}",
        help="U-Net arguments (random weights) or a trained .safetensors bundle (better for "
        "the bf16/fp32 agreement: random weights put most probabilities near 0.5)",
    )
    parser.add_argument("--case", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        os.environ.setdefault("GDAL_CACHEMAX", "64")  # as the geounet CLI does
        print(json.dumps(case(*args.case)))
        return
    tmp = Path(tempfile.mkdtemp())
    scene = make_scene(tmp / "scene.tif", args.size)
    out = {k: tmp / f"{k}.tif" for k in ("geo_bf16", "geo_fp32", "bare", "monai")}
    geo = run("geounet", scene, "bf16", args.model, out["geo_bf16"])
    geo32 = run("geounet", scene, "fp32", args.model, out["geo_fp32"])
    bare = run("bare", scene, "bf16", args.model, out["bare"])
    monai = run("monai", scene, "bf16", args.model, out["monai"])
    print(f"model unet {args.model}, tile {TILE}, overlap {OVERLAP}, batch {BATCH}, CPU")
    print(f"\n{args.size} x {args.size} scene")
    print("| run | MPix/s | seconds | peak RSS (MB) |")
    print("|---|---:|---:|---:|")
    for name, r in (
        ("geounet predict, bf16", geo),
        ("geounet predict, fp32", geo32),
        ("bare model forward, same windows, bf16", bare),
        ("MONAI sliding_window_inference (Gaussian, scene in memory), bf16", monai),
    ):
        print(f"| {name} | {r['mpix_s']:.2f} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    print("\n| ratio | value |")
    print("|---|---:|")
    print(f"| geounet predict / bare forward (bf16) | **{geo['mpix_s'] / bare['mpix_s']:.2f}** |")
    print(f"| bf16 speed-up over fp32 (geounet predict) | {geo['mpix_s'] / geo32['mpix_s']:.2f} |")
    same = agreement(out["geo_bf16"], out["geo_fp32"])
    print(f"| pixels with the same class, bf16 vs fp32 | {same:.4%} |")
    print(f"| geounet / MONAI speed | {geo['mpix_s'] / monai['mpix_s']:.2f} |")
    print(f"| geounet / MONAI peak RSS | {geo['peak_rss_mb'] / monai['peak_rss_mb']:.2f} |")
    if args.big:
        big = make_scene(tmp / "big.tif", args.big)
        geo_big = run("geounet", big, "bf16", args.model, tmp / "big_out.tif")
        print("\n| scene | MPix/s | peak RSS (MB) |")
        print("|---|---:|---:|")
        print(f"| {args.size}^2 | {geo['mpix_s']:.2f} | {geo['peak_rss_mb']:.0f} |")
        print(f"| {args.big}^2 | {geo_big['mpix_s']:.2f} | {geo_big['peak_rss_mb']:.0f} |")
        print(
            f"| ratio big / small RSS | | **{geo_big['peak_rss_mb'] / geo['peak_rss_mb']:.2f}** |"
        )


if __name__ == "__main__":
    main()
