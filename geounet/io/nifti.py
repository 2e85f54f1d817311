"""NIfTI volumes: read with their affine and voxel spacing, write class maps on their grid."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geounet.errors import InvalidRasterError
from geounet.io.atomic import atomic_output, require_file

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` names a NIfTI file by its extension."""
    name = Path(path).name.lower()
    return name.endswith(NIFTI_SUFFIXES)


@dataclass
class Volume:
    """A volume's voxels (X, Y, Z) with the grid it lives on."""

    data: np.ndarray | None  # None for a grid kept only to write outputs on
    affine: np.ndarray
    spacing: tuple[float, float, float]
    header: object  # nibabel header, kept to write outputs on the same grid
    path: Path
    shape: tuple[int, ...] = ()  # (X, Y, Z) of the voxel grid

    @property
    def axial_axis(self) -> int:
        """The voxel axis that runs inferior-superior (the axial slice axis)."""
        import nibabel as nib

        codes = nib.aff2axcodes(self.affine)
        return next((i for i, c in enumerate(codes) if c in "SI"), 2)


def read_volume(path: str | os.PathLike[str], *, allow_4d: bool = False) -> Volume:
    """Read a 3D NIfTI volume (a 4D file with one volume is accepted).

    Args:
        path: ``.nii`` or ``.nii.gz`` file.
        allow_4d: Accept 4D files (X, Y, Z, C) of several modalities (MSD images).

    Raises:
        InputFileNotFoundError: If the file does not exist.
        InvalidRasterError: If it is not a readable 3D NIfTI volume.
    """
    import nibabel as nib

    p = require_file(path)
    try:
        image = nib.load(str(p))
        data = np.array(image.dataobj)  # a copy: no memory map (and open file) kept
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InvalidRasterError(f"{p}: not a readable NIfTI volume ({exc})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3 and not (allow_4d and data.ndim == 4):
        raise InvalidRasterError(
            f"{p}: expected a 3D volume, got shape {data.shape}; give one modality per file"
        )
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    affine = np.asarray(image.affine, dtype=np.float64)
    return Volume(data, affine, zooms, image.header, p, tuple(data.shape[:3]))


def write_volume(path: str | os.PathLike[str], classes: np.ndarray, like: Volume) -> Path:
    """Write a class-id volume on the grid (affine, header) of ``like``, atomically.

    Args:
        path: ``.nii`` or ``.nii.gz`` output.
        classes: (X, Y, Z) integer class ids, the shape of ``like``.
        like: The input volume whose affine and header the output keeps.
    """
    import nibabel as nib

    out = Path(path)
    if not is_nifti(out):
        raise InvalidRasterError(f"{out}: write volumes as .nii or .nii.gz")
    if classes.shape != like.shape[:3]:
        raise ValueError(f"class volume shape {classes.shape} != input {like.shape[:3]}")
    header = like.header.copy()
    header.set_data_dtype(np.uint8)
    image = nib.Nifti1Image(classes.astype(np.uint8), like.affine, header=header)
    image.header.set_slope_inter(1, 0)
    image.header["descrip"] = b"geounet segmentation"
    payload = image.to_bytes()
    if out.name.lower().endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6)
    with atomic_output(out) as tmp:
        tmp.write_bytes(payload)
    return out
