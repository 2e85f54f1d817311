"""Instance step benchmark: what separating objects costs on top of a class map.

1. The seeded watershed on a SIZE² probability map: whole raster in memory
   (``split_instances``) against the streamed ``InstanceStream`` fed 512-row bands (as
   scene prediction feeds it); wall time, peak RSS, and that both give the same objects.
2. ``predict_scene`` on a generated SIZE² scene with an object model: class map only
   against class map + instance map, and vectorizing the instance map.

Every case runs in a fresh process (peak RSS is per process).

    .venv/bin/python benchmarks/instances.py [--size 8192] [--model MODEL.safetensors]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _rss import peak_rss_mb  # benchmarks/ is on sys.path when run as a script


def probabilities(size: int):
    """Footprint / border / contact maps of a city of touching rectangular roofs."""
    import numpy as np
    from scipy import ndimage

    from geounet.data.objects import BORDER, CONTACT, object_target

    rng = np.random.default_rng(0)
    inst = np.zeros((size, size), np.int32)
    k = 1
    for r in range(0, size - 40, 36):
        for c in range(0, size - 40, 40):
            h, w = rng.integers(18, 36), rng.integers(20, 40)  # many touch their neighbours
            inst[r : r + h, c : c + w] = k
            k += 1
    target = object_target(inst, 2, 3)
    noise = ndimage.gaussian_filter(rng.normal(0, 0.15, inst.shape), 1.5).astype(np.float32)
    fp = np.clip((inst > 0) * 0.9 + 0.05 + noise, 0, 1).astype(np.float32)
    border = ((target & BORDER) > 0).astype(np.float32) * 0.9
    contact = ((target & CONTACT) > 0).astype(np.float32) * 0.9
    return fp, border, contact


def case(kind: str, size: int, model: str, tmp: str) -> dict:
    """One measurement (in a child process)."""
    import numpy as np

    from geounet.infer.instances import InstanceParams, InstanceStream, split_instances

    params = InstanceParams()
    if kind in ("whole", "streamed"):
        fp, border, contact = probabilities(size)
        base = peak_rss_mb()
        start = time.perf_counter()
        if kind == "whole":
            labels = split_instances(fp, border, contact, params)
            n = int(labels.max())
        else:
            stream = InstanceStream(size, params, lambda row, ids: None)
            for r in range(0, size, 512):
                stream.put(np.stack([fp[r : r + 512], border[r : r + 512], contact[r : r + 512]]))
            stream.close()
            n = stream.count
        return {
            "seconds": time.perf_counter() - start,
            "extra_mb": peak_rss_mb() - base,
            "objects": n,
        }
    from inference import make_scene

    import geounet.api as gu

    scene = Path(tmp) / f"scene_{size}.tif"
    if not scene.exists():
        make_scene(scene, size)
    net, meta = gu.load_model(model)
    out = Path(tmp) / f"{kind}.tif"
    start = time.perf_counter()
    options = gu.PredictOptions(device="cpu", precision="bf16")
    if kind == "predict+instances":
        options = gu.PredictOptions(device="cpu", precision="bf16", instances=Path(tmp) / "i.tif")
    result = gu.predict((net, meta), scene, out, options)
    seconds = time.perf_counter() - start
    record = {"seconds": seconds, "peak_mb": peak_rss_mb(), "objects": result.objects}
    if kind == "predict+instances":
        start = time.perf_counter()
        gdf = gu.vectorize(result.instances)
        record["vectorize_seconds"] = time.perf_counter() - start
        record["polygons"] = len(gdf)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--scene", type=int, default=4096, help="predicted scene side")
    parser.add_argument("--model", default="runs/buildings/model.safetensors")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        size = args.scene if args.case.startswith("predict") else args.size
        print(json.dumps(case(args.case, size, args.model, args.tmp)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = ["whole", "streamed"]
        if Path(args.model).exists():
            cases += ["predict", "predict+instances"]
        else:
            print(f"(no model at {args.model}: scene cases skipped)")
        for kind in cases:
            cmd = [sys.executable, __file__, "--case", kind, "--tmp", tmp]
            cmd += ["--size", str(args.size), "--scene", str(args.scene), "--model", args.model]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results[kind] = json.loads(out.strip().splitlines()[-1])
    w, s = results["whole"], results["streamed"]
    print(f"watershed on {args.size}^2 probabilities ({w['objects']} objects)")
    print(f"{'':>10} {'seconds':>8} {'extra MB':>9}")
    for kind in ("whole", "streamed"):
        r = results[kind]
        print(f"{kind:>10} {r['seconds']:8.1f} {r['extra_mb']:9.0f}")
    print(
        f"streamed / whole: time x{s['seconds'] / w['seconds']:.2f}, "
        f"memory x{s['extra_mb'] / max(w['extra_mb'], 1):.2f}; same objects: "
        f"{s['objects'] == w['objects']}"
    )
    if "predict" in results:
        p, q = results["predict"], results["predict+instances"]
        print(f"\npredict_scene on a {args.scene}^2 scene, bf16 CPU, model {args.model}")
        print(f"class map only      {p['seconds']:7.1f} s  peak {p['peak_mb']:6.0f} MB")
        print(
            f"+ instance map      {q['seconds']:7.1f} s  peak {q['peak_mb']:6.0f} MB  "
            f"({q['objects']} objects)"
        )
        print(
            f"instances / class map only: time x{q['seconds'] / p['seconds']:.2f}, "
            f"memory x{q['peak_mb'] / p['peak_mb']:.2f}; vectorizing the instance map "
            f"{q['vectorize_seconds']:.1f} s ({q['polygons']} polygons)"
        )


if __name__ == "__main__":
    main()
