"""3D volume prediction: volumes per minute and peak memory of ``geounet predict`` on a
BraTS-sized two-modality case (240 x 240 x 155), side by side with MONAI's
``sliding_window_inference`` (Gaussian blending, the same network, patch and overlap) and
the bare forward over the same patches.

Every case runs in a fresh process (peak RSS is per process). A trained bundle can be
given; by default a random 3D U-Net (the brain_tumour_3d preset's architecture) is used.

    .venv/bin/python benchmarks/volumes.py [--model runs/brain_tumour_3d/model.safetensors]
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

SHAPE = (240, 240, 155)


def make_case(folder: Path) -> Path:
    """Two 240x240x155 modality volumes (1 mm) with a bright ellipsoid."""
    import nibabel as nib
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    grid = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    brain = sum(((g - n / 2) / (0.4 * n)) ** 2 for g, n in zip(grid, SHAPE, strict=True)) < 1
    for name in ("t1c", "flair"):
        data = (brain * rng.normal(1, 0.2, SHAPE)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(folder / f"{name}.nii.gz"))
    return folder


def _bundle(model: str | None, tmp: Path) -> Path:
    if model:
        return Path(model)
    from geounet.models.bundle import ModelMeta, build_segmenter, save_bundle

    meta = ModelMeta(
        architecture="unet3d",
        arguments={"width": 16, "depth": 3},
        in_channels=2,
        out_channels=4,
        classes=["background", "whole_tumour", "tumour_core", "enhancing"],
        colors=[[0, 0, 0], [255, 220, 0], [255, 100, 0], [220, 0, 60]],
        bands=["t1c*", "flair*"],
        mean=[0.0, 0.0],
        std=[1.0, 1.0],
        tile_size=64,
        source="nifti",
        preprocess={
            "normalize": "zscore",
            "mask": "nonzero",
            "spacing": [2.0, 2.0, 2.0],
            "modalities": ["t1c*", "flair*"],
        },
        patch=[64, 64, 64],
    )
    return save_bundle(build_segmenter(meta), meta, tmp / "unet3d.safetensors")


def run_case(kind: str, model: str, case: str, out: str, precision: str) -> dict:
    """One measurement in this process."""
    import torch

    import geounet.api as gu
    from geounet.data.cases import Preprocess, prepare_case
    from geounet.infer.cases import input_files, model_source
    from geounet.infer.scene import make_predictor

    net, meta = gu.load_model(model)
    start = time.perf_counter()
    if kind == "geounet":
        gu.predict((net, meta), case, out, gu.PredictOptions(precision=precision, batch_size=2))
    else:
        raw = model_source(meta).read_input(input_files(meta, case))
        image = torch.from_numpy(
            prepare_case(raw, Preprocess.from_dict(meta.preprocess), None, 3).image
        )
        device = torch.device("cpu")
        predict = make_predictor(net.eval(), meta, device, gu.PredictOptions(precision=precision))
        patch = tuple(meta.patch)
        if kind == "monai":
            from monai.inferers import sliding_window_inference

            sliding_window_inference(image[None], patch, 2, predict, overlap=0.5, mode="gaussian")
        else:  # bare forward over the same number of patches geounet computes
            from geounet.io.windows import window_starts

            n = 1
            for size, p in zip(image.shape[1:], patch, strict=True):
                n *= len(window_starts(size, min(p, size), min(p, size) // 2))
            x = torch.zeros(2, 2, *patch)
            for _ in range(-(-n // 2)):
                predict(x)
    seconds = time.perf_counter() - start
    return {"kind": kind, "precision": precision, "seconds": seconds, "rss_mb": peak_rss_mb()}


def main() -> None:
    """Run each case in a fresh process; print a table with ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="A trained 3D bundle (.safetensors).")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(*args.child)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        case = make_case(tmp / "case")
        model = _bundle(args.model, tmp)
        kinds = ["bare", "geounet"]
        try:
            import monai  # noqa: F401

            kinds.append("monai")
        except ImportError:
            print("monai not installed (pip install -e '.[bench]'): skipping it", file=sys.stderr)
        rows = []
        for precision in ("fp32", "bf16"):
            for kind in kinds:
                out = tmp / f"{kind}.nii.gz"
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    kind,
                    str(model),
                    str(case),
                    str(out),
                    precision,
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
    print(f"\nvolume {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}, 2 modalities; model at 2 mm, patch 64^3\n")
    print("| run | precision | s / volume | volumes / min | peak RSS MB | vs bare forward |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        bare = next(b for b in rows if b["kind"] == "bare" and b["precision"] == r["precision"])
        print(
            f"| {r['kind']} | {r['precision']} | {r['seconds']:.1f} | {60 / r['seconds']:.1f} | "
            f"{r['rss_mb']:.0f} | {bare['seconds'] / r['seconds']:.2f} |"
        )


if __name__ == "__main__":
    main()
