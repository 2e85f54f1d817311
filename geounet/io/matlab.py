"""The brain-tumour slices of Cheng et al. (figshare): MATLAB files with a ``cjdata`` struct.

Each file holds one T1-weighted contrast-enhanced slice: ``cjdata.image`` (512 x 512 or
256 x 256, int16), ``cjdata.tumorMask`` (0/1), ``cjdata.label`` (1 meningioma, 2 glioma,
3 pituitary tumour), ``cjdata.PID`` (patient id, a string) and ``cjdata.tumorBorder``.
The published files are MATLAB v7.3 (HDF5, read with h5py, whose arrays come out
transposed); older v5 files are read with scipy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geounet.errors import InvalidRasterError
from geounet.io.atomic import require_file

TUMOUR_TYPES = {1: "meningioma", 2: "glioma", 3: "pituitary"}


@dataclass
class MatSlice:
    """One slice: image, tumour mask, tumour type and patient."""

    image: np.ndarray  # (H, W)
    mask: np.ndarray  # (H, W) 0/1
    label: int
    pid: str
    path: Path


def read_figshare_mat(path: str | os.PathLike[str]) -> MatSlice:
    """Read one figshare brain-tumour ``.mat`` file (v7.3 HDF5 or v5).

    Raises:
        InputFileNotFoundError: If the file does not exist.
        InvalidRasterError: If it is not a MATLAB file with a ``cjdata`` struct.
    """
    import h5py

    p = require_file(path)
    try:
        if h5py.is_hdf5(p):
            return _read_v73(p)
        return _read_v5(p)
    except InvalidRasterError:
        raise
    except (KeyError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise InvalidRasterError(f"{p}: not a readable brain-tumour .mat file ({exc})") from exc


def _read_v73(p: Path) -> MatSlice:
    import h5py

    with h5py.File(p, "r") as f:
        if "cjdata" not in f:
            raise InvalidRasterError(
                f"{p}: no 'cjdata' struct (found {sorted(f.keys())}); expected the figshare "
                "brain-tumour layout (cjdata.image, cjdata.tumorMask, cjdata.label, cjdata.PID)"
            )
        cj = f["cjdata"]
        _require(p, cj.keys())
        image = np.asarray(cj["image"]).T  # MATLAB is column-major: h5py gives (W, H)
        mask = np.asarray(cj["tumorMask"]).T
        label = int(np.asarray(cj["label"]).ravel()[0])
        pid = "".join(chr(int(c)) for c in np.asarray(cj["PID"]).ravel()) if "PID" in cj else ""
    return MatSlice(image, mask.astype(np.uint8), label, pid, p)


def _read_v5(p: Path) -> MatSlice:
    from scipy.io import loadmat

    try:
        content = loadmat(p, squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises ValueError/TypeError/MatReadError
        raise InvalidRasterError(f"{p}: not a MATLAB file ({exc})") from exc
    if "cjdata" not in content:
        keys = sorted(k for k in content if not k.startswith("__"))
        raise InvalidRasterError(
            f"{p}: no 'cjdata' struct (found {keys}); expected the figshare brain-tumour layout"
        )
    cj = content["cjdata"]
    _require(p, cj._fieldnames)
    pid = str(getattr(cj, "PID", ""))
    return MatSlice(
        np.asarray(cj.image), np.asarray(cj.tumorMask).astype(np.uint8), int(cj.label), pid, p
    )


def _require(p: Path, keys) -> None:
    missing = [k for k in ("image", "tumorMask", "label") if k not in set(keys)]
    if missing:
        raise InvalidRasterError(f"{p}: the cjdata struct lacks {missing}")
