"""Model zoo benchmark: parameters, CPU forward throughput (fp32 vs bf16) and peak memory.

Each measurement runs in a fresh process so that peak RSS belongs to one model alone.
2D models run on 512 x 512 tiles (MPix/s), 3D models on 64 x 128 x 128 volumes (MVox/s).

    .venv/bin/python benchmarks/models.py [--repeats 3] [--batch 2] [--only unet,fcn]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _rss import peak_rss_mb  # benchmarks/ is on sys.path when run as a script


def measure(name: str, precision: str, batch: int, repeats: int) -> dict:
    """Time the forward pass of one registered model (run in a child process)."""
    import torch

    from geounet.models.bundle import ModelMeta, build_segmenter
    from geounet.models.registry import REGISTRY

    dims = REGISTRY[name].dims
    meta = ModelMeta(
        architecture=name,
        arguments={},
        in_channels=3,
        out_channels=2,
        classes=["a", "b"],
        colors=[[0, 0, 0], [1, 1, 1]],
        bands=["r", "g", "b"],
        mean=[0.0] * 3,
        std=[1.0] * 3,
        tile_size=512,
    )
    torch.manual_seed(0)
    model = build_segmenter(meta).eval().use_channels_last()
    size = (512, 512) if dims == 2 else (64, 128, 128)
    x = torch.rand(batch, 3, *size) * 255
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"):
        model(x)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        seconds = time.perf_counter() - start
    pixels = batch * repeats * torch.tensor(size).prod().item()
    return {
        "name": name,
        "dims": dims,
        "precision": precision,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "mpix_s": pixels / seconds / 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    """Run every model in both precisions and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--only", default="", help="Comma-separated model names.")
    parser.add_argument("--one", nargs=2, metavar=("NAME", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, batch=args.batch, repeats=args.repeats)))
        return

    from geounet.models.registry import REGISTRY
    from geounet.runtime import cpu_has_fast_bf16

    names = [n for n in REGISTRY if not args.only or n in args.only.split(",")]
    print(f"CPU with native bf16: {cpu_has_fast_bf16()}; batch {args.batch}, {args.repeats} runs")
    print("| model | input | params (M) | fp32 MPix/s | bf16 MPix/s | bf16/fp32 | RSS (MB) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        rows = {}
        for precision in ("fp32", "bf16"):
            cmd = [sys.executable, __file__, "--one", name, precision]
            cmd += ["--batch", str(args.batch), "--repeats", str(args.repeats)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows[precision] = json.loads(out.strip().splitlines()[-1])
        fp32, bf16 = rows["fp32"], rows["bf16"]
        unit = "512x512" if fp32["dims"] == 2 else "64x128x128 (MVox/s)"
        print(
            f"| {name} | {unit} | {fp32['params_m']:.2f} | {fp32['mpix_s']:.2f} | "
            f"{bf16['mpix_s']:.2f} | {bf16['mpix_s'] / fp32['mpix_s']:.2f} | "
            f"{fp32['peak_rss_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
