"""Generated chips, NIfTI cases and figshare .mat slices for the non-GeoTIFF tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

AFFINE = np.array(  # anisotropic voxels (0.9 x 1.1 x 2.5 mm), rotated, shifted: non-identity
    [
        [0.0, -1.1, 0.0, 90.0],
        [0.9, 0.0, 0.0, -120.0],
        [0.0, 0.0, 2.5, -60.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def blob_case(shape=(24, 28, 16), seed=0, radius=5.0):
    """Two modality volumes (brain-like ellipsoid, brighter tumour) and a BraTS-style label
    (2 oedema shell, 1 necrosis core, 4 enhancing rim)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    centre = np.array(shape) / 2 + rng.uniform(-2, 2, 3)
    brain = (((grid - np.array(shape) / 2) / (np.array(shape) * 0.45)) ** 2).sum(-1) < 1
    dist = np.sqrt((((grid - centre) * [1, 1, 2]) ** 2).sum(-1))
    label = np.zeros(shape, np.int16)
    label[dist < radius] = 2
    label[dist < radius * 0.7] = 4
    label[dist < radius * 0.4] = 1
    label[~brain] = 0
    t1c = brain * (1.0 + rng.normal(0, 0.1, shape)) + 2.0 * (label == 4)
    flair = brain * (1.0 + rng.normal(0, 0.1, shape)) + 1.5 * (label > 0)
    return t1c.astype(np.float32), flair.astype(np.float32), label


def write_nifti(path: Path, data: np.ndarray, affine=AFFINE) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def nifti_cases(root: Path, n: int = 3, shape=(24, 28, 16), affine=AFFINE) -> list[Path]:
    """Case folders ``root/case_i`` with ``t1c.nii.gz``, ``flair.nii.gz``, ``seg.nii.gz``."""
    folders = []
    for i in range(n):
        t1c, flair, label = blob_case(shape, seed=i)
        folder = root / f"case_{i}"
        write_nifti(folder / "t1c.nii.gz", t1c, affine)
        write_nifti(folder / "flair.nii.gz", flair, affine)
        write_nifti(folder / "seg.nii.gz", label, affine)
        folders.append(folder)
    return folders


def decathlon(root: Path, n: int = 3) -> Path:
    """A Medical Segmentation Decathlon folder: 4D two-modality images, dataset.json."""
    training = []
    for i in range(n):
        t1c, flair, label = blob_case(seed=10 + i)
        name = f"brain_{i:03d}.nii.gz"
        write_nifti(root / "imagesTr" / name, np.stack([flair, t1c], -1))
        write_nifti(root / "labelsTr" / name, label)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    spec = {"name": "toy", "modality": {"0": "FLAIR", "1": "T1c"}, "training": training}
    (root / "dataset.json").write_text(json.dumps(spec))
    return root


def nnunet(root: Path, n: int = 3) -> Path:
    """An nnU-Net v2 raw folder: ``CASE_0000`` / ``CASE_0001`` channel files."""
    for i in range(n):
        t1c, flair, label = blob_case(seed=20 + i)
        write_nifti(root / "imagesTr" / f"toy_{i:03d}_0000.nii.gz", t1c)
        write_nifti(root / "imagesTr" / f"toy_{i:03d}_0001.nii.gz", flair)
        write_nifti(root / "labelsTr" / f"toy_{i:03d}.nii.gz", label)
    spec = {
        "channel_names": {"0": "T1c", "1": "FLAIR"},
        "labels": {"background": 0, "tumour": [1, 2, 4]},
        "numTraining": n,
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(spec))
    return root


def chip(size=64, seed=0):
    """An RGB chip with bright squares, and its mask of 0 / 1 class codes."""
    rng = np.random.default_rng(seed)
    image = rng.integers(20, 60, (size, size, 3)).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(4):
        r, c = rng.integers(0, size - 16, 2)
        h, w = rng.integers(6, 16, 2)
        image[r : r + h, c : c + w] = (200, 180, 90)
        mask[r : r + h, c : c + w] = 1
    return image, mask


def chip_folder(root: Path, n: int = 4, *, rgb_masks: bool = True, size: int = 64) -> Path:
    """``root/N_sat.jpg`` and ``root/N_mask.png`` pairs (RGB 0/255 masks as DeepGlobe)."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, mask = chip(size, seed=i)
        Image.fromarray(image).save(root / f"{i}_sat.png")
        m = (mask * 255).astype(np.uint8)
        Image.fromarray(np.stack([m, m, m], -1) if rgb_masks else m).save(root / f"{i}_mask.png")
    return root


def figshare_v73(path: Path, *, size=512, label=2, pid="100360", seed=0) -> Path:
    """A MATLAB v7.3 (HDF5) file in the figshare layout: arrays stored transposed, as
    MATLAB writes them, PID as uint16 characters."""
    import h5py

    rng = np.random.default_rng(seed)
    image = rng.integers(0, 300, (size, size)).astype(np.int16)
    mask = np.zeros((size, size), np.uint8)
    r, c = size // 3, size // 2  # not symmetric: a transposition bug would show
    mask[r : r + size // 8, c : c + size // 5] = 1
    image[mask > 0] += 600
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        cj = f.create_group("cjdata")
        cj["image"] = image.T
        cj["tumorMask"] = mask.T.astype(np.float64)
        cj["label"] = np.array([[float(label)]])
        cj["PID"] = np.array([[ord(ch)] for ch in pid], dtype=np.uint16)
        cj["tumorBorder"] = np.array([[float(c), float(r), float(c + 5), float(r + 5)]])
    return path


def figshare_v5(path: Path, *, size=256, label=3, pid="MR0401", seed=0) -> Path:
    """The same struct in a MATLAB v5 file (scipy)."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    image = rng.integers(0, 300, (size, size)).astype(np.int16)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 3 : size // 3 + 20, size // 2 : size // 2 + 40] = 1
    image[mask > 0] += 600
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(
        path,
        {
            "cjdata": {
                "image": image,
                "tumorMask": mask,
                "label": label,
                "PID": pid,
                "tumorBorder": np.zeros((1, 4)),
            }
        },
    )
    return path
