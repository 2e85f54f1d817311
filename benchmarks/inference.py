"""Scene inference benchmark: `geounet predict` at its defaults against MONAI's
sliding_window_inference (Gaussian, fp32 and bf16) and against its own previous settings
(512 px windows, overlap 128, batch 4), pixel agreement with the fp32 Gaussian reference,
peak memory on 4096^2 and 16384^2 scenes.

Every case runs in a fresh process (peak RSS is per process). Scenes are generated
(tiles of the sample-scene generator) into a temporary folder, or given (--scene).

    .venv/bin/python benchmarks/inference.py [--scene S.tif] [--big 16384] [--model M]
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

TILE, OVERLAP, BATCH = 512, 128, 4  # MONAI's and geounet's previous settings


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
    if kind == "geounet":  # defaults: windows, batch, precision and compilation
        predict_scene(model, meta, scene, out, PredictOptions(device="cpu"))
    elif kind == "geounet-before":  # the settings before this version's defaults
        options = PredictOptions(
            tile=TILE, overlap=OVERLAP, batch_size=BATCH, device="cpu", precision=precision,
            compile="off",
        )  # fmt: skip
        predict_scene(model, meta, scene, out, options)
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
                lambda b: (
                    torch.sigmoid(model(b).float()) if meta.sigmoid else model(b).float().softmax(1)
                ),
                overlap=OVERLAP / TILE,
                mode="gaussian",
            )
        with rasterio.open(scene) as src:
            profile = src.profile | {"count": 1, "compress": "deflate"}
        with rasterio.open(out, "w", **profile) as dst:
            classes = probs[0, 0] > 0.5 if meta.sigmoid else probs[0].argmax(0)
            dst.write(classes.numpy().astype("uint8"), 1)
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
        mine, reference = x.read(1), y.read(1)
        valid = mine != (x.nodata if x.nodata is not None else 255)
        return float((mine[valid] == reference[valid]).mean())


def main() -> None:
    """Run the cases and print Markdown tables with ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--scene", default=None, help="a real scene instead of a generated one")
    parser.add_argument("--big", type=int, default=16384, help="0 skips the big scene")
    parser.add_argument(
        "--bf16",
        choices=["auto", "yes", "no"],
        default="auto",
        help="also run MONAI in bf16 (auto: on CPUs with native bf16 instructions)",
    )
    parser.add_argument(
        "--model",
        default="{encoder: resnet34}",
        help="U-Net arguments (random weights) or a trained .safetensors bundle (needed for "
        "a meaningful agreement: random weights put most probabilities near 0.5)",
    )
    parser.add_argument("--case", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        os.environ.setdefault("GDAL_CACHEMAX", "64")  # as the geounet CLI does
        print(json.dumps(case(*args.case)))
        return
    from geounet.runtime import cpu_has_fast_bf16

    bf16 = args.bf16 == "yes" or (args.bf16 == "auto" and cpu_has_fast_bf16())
    tmp = Path(tempfile.mkdtemp())
    scene = Path(args.scene) if args.scene else make_scene(tmp / "scene.tif", args.size)
    out = {k: tmp / f"{k}.tif" for k in ("geo", "before", "monai32", "monai16")}
    runs = {
        "geo": run("geounet", scene, "auto", args.model, out["geo"]),
        "before": run("geounet-before", scene, "auto", args.model, out["before"]),
        "monai32": run("monai", scene, "fp32", args.model, out["monai32"]),
    }
    if bf16:
        runs["monai16"] = run("monai", scene, "bf16", args.model, out["monai16"])
    geo = runs["geo"]
    print(f"model unet {args.model}, CPU, fast bf16: {cpu_has_fast_bf16()}")
    print(f"\n{scene.name}: {geo['pixels'] / 1e6:.1f} MPix")
    print("| run | MPix/s | seconds | peak RSS (MB) |")
    print("|---|---:|---:|---:|")
    names = {
        "geo": "geounet predict, defaults",
        "before": f"geounet predict, tile {TILE}, overlap {OVERLAP}, batch {BATCH}, eager",
        "monai32": "MONAI sliding_window_inference, Gaussian, fp32",
        "monai16": "MONAI sliding_window_inference, Gaussian, bf16",
    }
    for key, r in runs.items():
        print(f"| {names[key]} | {r['mpix_s']:.3f} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    print("\n| ratio | value |")
    print("|---|---:|")

    def ratio(name: str, key: str, field: str, bold: bool = False) -> None:
        value = f"{geo[field] / runs[key][field]:.2f}"
        print(f"| {name} | {'**' + value + '**' if bold else value} |")

    ratio("geounet defaults / MONAI fp32, speed", "monai32", "mpix_s", True)
    if bf16:
        ratio("geounet defaults / MONAI bf16, speed", "monai16", "mpix_s", True)
    ratio("geounet defaults / previous settings, speed", "before", "mpix_s")
    ratio("geounet defaults / previous settings, peak RSS", "before", "peak_rss_mb")
    ratio("geounet defaults / MONAI fp32, peak RSS", "monai32", "peak_rss_mb")
    same = agreement(out["geo"], out["monai32"])
    print(f"| pixels agreeing with the fp32 Gaussian reference (MONAI) | **{same:.4%}** |")
    if args.big:
        big = make_scene(tmp / "big.tif", args.big)
        small = run(
            "geounet", make_scene(tmp / "small.tif", 4096), "auto", args.model, tmp / "s.tif"
        )
        geo_big = run("geounet", big, "auto", args.model, tmp / "big_out.tif")
        print("\n| generated scene | MPix/s | peak RSS (MB) |")
        print("|---|---:|---:|")
        print(f"| 4096^2 | {small['mpix_s']:.3f} | {small['peak_rss_mb']:.0f} |")
        print(f"| {args.big}^2 | {geo_big['mpix_s']:.3f} | {geo_big['peak_rss_mb']:.0f} |")
        ratio = geo_big["peak_rss_mb"] / small["peak_rss_mb"]
        print(f"| ratio big / small RSS | | **{ratio:.2f}** |")


if __name__ == "__main__":
    main()
