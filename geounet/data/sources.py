"""Inputs that are not GeoTIFF scenes, behind one interface: chip folders, NIfTI cases and
the figshare brain-tumour ``.mat`` slices.

A source only declares where its cases are and how to read one (as torchgeo's NAIP is
mostly declarations over ``RasterDataset``); everything after that (label mapping,
normalization, splits, sampling, training, prediction) is shared in :mod:`geounet.data.cases`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from geounet.errors import DataError, InputFileNotFoundError
from geounet.io.chips import CHIP_SUFFIXES, read_chip
from geounet.io.nifti import is_nifti, read_volume


@dataclass
class CaseRef:
    """Where one case's files are.

    ``group`` is the unit that splits keep together (patient, case or file).
    """

    id: str
    group: str
    images: list[Path]
    label: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RawCase:
    """One case as read: channels first, raw label values, and its grid."""

    ref: CaseRef
    image: np.ndarray  # (C, *spatial), source dtype
    label: np.ndarray | None  # (*spatial) raw values
    spacing: tuple[float, ...]
    grid: Any = None  # what writing an output on the input's grid needs (a Volume, ...)


def natural_key(text: str) -> tuple:
    """Sort key that orders ``2`` before ``10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


class CaseSource(ABC):
    """The interface every non-GeoTIFF source implements."""

    name: ClassVar[str]
    dims: ClassVar[int]  # spatial dims of a case as read

    @abstractmethod
    def discover(self) -> list[CaseRef]:
        """Every labelled case, in a stable order."""

    @abstractmethod
    def read(self, ref: CaseRef) -> RawCase:
        """Read one case's image (and label when it has one)."""

    def read_input(self, paths: Sequence[Path]) -> RawCase:
        """Read an unlabelled input for prediction (the files of one case)."""
        return self.read(CaseRef(paths[0].stem, paths[0].stem, list(paths)))


# ---------------------------------------------------------------------------- folders


class FolderSource(CaseSource):
    """Image and mask chips matched by name: two folders (same stems) or one folder with
    name patterns such as ``*_sat.jpg`` / ``*_mask.png``; PNG, JPEG or TIFF, any band count.

    Args:
        images: Folder of images.
        masks: Folder of masks (default: the image folder).
        image_pattern: Glob of image names; its ``*`` is the key matching a mask.
        mask_pattern: Glob of mask names (default: same stem, any image suffix).
        mask_channel: Channel of multi-channel (RGB) masks that carries the class.
    """

    name = "folders"
    dims = 2

    def __init__(
        self,
        images: str | Path,
        masks: str | Path | None = None,
        *,
        image_pattern: str | None = None,
        mask_pattern: str | None = None,
        mask_channel: int = 0,
    ) -> None:
        self.images = Path(images)
        self.masks = Path(masks) if masks else self.images
        self.image_pattern, self.mask_pattern = image_pattern, mask_pattern
        self.mask_channel = mask_channel

    def _keys(self, folder: Path, pattern: str | None, exclude: str | None = None) -> dict:
        if not folder.is_dir():
            raise InputFileNotFoundError(f"{folder}: folder not found (check data.images/masks)")
        found = {}
        for p in folder.iterdir():
            if p.suffix.lower() not in CHIP_SUFFIXES or p.name.startswith("."):
                continue
            if exclude and fnmatch.fnmatch(p.name, exclude):
                continue
            if pattern is None:
                found[p.stem] = p
            elif fnmatch.fnmatch(p.name, pattern):
                head, _, tail = pattern.partition("*")
                found[p.name[len(head) : len(p.name) - len(tail)]] = p
        return found

    def discover(self) -> list[CaseRef]:
        """Image/mask pairs sorted naturally by key."""
        same = self.masks == self.images
        if same and not (self.image_pattern and self.mask_pattern):
            raise DataError(
                f"{self.images}: images and masks share a folder; set data.image_pattern and "
                "data.mask_pattern (e.g. '*_sat.jpg' and '*_mask.png')"
            )
        images = self._keys(self.images, self.image_pattern, self.mask_pattern if same else None)
        masks = self._keys(self.masks, self.mask_pattern)
        if not images:
            raise DataError(f"{self.images}: no images ({', '.join(CHIP_SUFFIXES)})")
        if not masks:
            raise DataError(
                f"{self.masks}: no masks found for the {len(images)} images in {self.images}; "
                "check data.masks / data.mask_pattern"
            )
        missing = sorted(set(images) - set(masks), key=natural_key)
        if missing:
            raise DataError(
                f"{images[missing[0]]}: no mask matches it in {self.masks} "
                f"({len(missing)} of {len(images)} images lack one); check data.mask_pattern"
            )
        keys = sorted(images, key=natural_key)
        return [CaseRef(k, k, [images[k]], masks[k]) for k in keys]

    def read(self, ref: CaseRef) -> RawCase:
        """The chip as (C, H, W) and its mask's class channel."""
        image = read_chip(ref.images[0])
        label = None
        if ref.label is not None:
            raw = read_chip(ref.label)
            label = raw[min(self.mask_channel, raw.shape[0] - 1)]
            if label.shape != image.shape[1:]:
                raise DataError(
                    f"{ref.label}: mask is {label.shape[1]}x{label.shape[0]} px but its image "
                    f"{ref.images[0].name} is {image.shape[2]}x{image.shape[1]}"
                )
        return RawCase(ref, image, label, (1.0, 1.0), grid=ref.images[0])


# ---------------------------------------------------------------------------- NIfTI


class NiftiSource(CaseSource):
    """Cases of one or more modality volumes plus a label volume.

    ``entries`` may hold, in any mix: case folders (modality files found by the
    ``modalities`` globs, the label by ``label_file``), glob patterns of case folders, a
    Medical Segmentation Decathlon folder (``dataset.json``, ``imagesTr/``,
    ``labelsTr/``; 4D multi-modal images), an nnU-Net v2 folder (``_0000``, ``_0001``
    channel files), or mappings ``{images: [...], label: ...}``.
    """

    name = "nifti"
    dims = 3

    def __init__(
        self,
        entries: Sequence[Any],
        *,
        modalities: Sequence[str] = (),
        label_file: str | None = None,
    ) -> None:
        self.entries = list(entries)
        self.modalities = list(modalities)
        self.label_file = label_file

    def discover(self) -> list[CaseRef]:
        """Every case the entries name."""
        refs: list[CaseRef] = []
        for entry in self.entries:
            if isinstance(entry, Mapping):
                refs.append(self._mapping(entry))
                continue
            matches = sorted(glob.glob(str(entry))) if glob.has_magic(str(entry)) else [entry]
            if not matches:
                raise InputFileNotFoundError(f"{entry}: no case folder matches this pattern")
            for m in matches:
                if glob.has_magic(str(entry)) and not Path(m).is_dir():
                    continue  # a pattern of case folders may also match stray files
                refs.extend(self._path(Path(m)))
        if not refs:
            raise DataError("data.images names no NIfTI case")
        return refs

    def _mapping(self, entry: Mapping) -> CaseRef:
        images = entry.get("images") or entry.get("image")
        images = [images] if isinstance(images, str) else list(images or [])
        if not images:
            raise DataError(f"case {dict(entry)}: needs 'images' (one file per modality)")
        paths = [Path(p) for p in images]
        label = Path(entry["label"]) if entry.get("label") else None
        for p in [*paths, *([label] if label else [])]:
            if not p.is_file():
                raise InputFileNotFoundError(f"{p}: file not found (check data.cases)")
        name = str(entry.get("id") or _stem(paths[0]))
        return CaseRef(name, str(entry.get("group") or name), paths, label)

    def _path(self, path: Path) -> list[CaseRef]:
        if not path.exists():
            raise InputFileNotFoundError(f"{path}: not found (check data.images)")
        if path.is_dir() and (path / "dataset.json").is_file():
            return self._decathlon(path)
        if path.is_dir():
            return [self._case_folder(path)]
        raise DataError(
            f"{path}: give case folders, an MSD / nnU-Net folder or data.cases, not a single file"
        )

    def case_files(
        self, folder: Path, *, need_label: bool = True
    ) -> tuple[list[Path], Path | None]:
        """The modality files (in ``modalities`` order) and the label file of a case folder."""
        if not self.modalities:
            raise DataError("data.modalities is empty; list the modality file names (globs)")
        files = [p for p in folder.iterdir() if is_nifti(p)]
        images = []
        for pattern in self.modalities:
            hits = sorted(p for p in files if _matches(p.name, pattern))
            if len(hits) != 1:
                found = ", ".join(sorted(p.name for p in files)) or "no NIfTI files"
                raise DataError(
                    f"{folder}: {len(hits)} files match modality {pattern!r} (found {found}); "
                    "make data.modalities match exactly one file each"
                )
            images.append(hits[0])
        label = None
        if self.label_file:
            hits = sorted(p for p in files if _matches(p.name, self.label_file))
            if hits:
                label = hits[0]
            elif need_label:
                raise DataError(f"{folder}: no label file {self.label_file!r}")
        return images, label

    def _case_folder(self, folder: Path) -> CaseRef:
        images, label = self.case_files(folder)
        if label is None:
            raise DataError(f"{folder}: set data.label_file to the label volume's name")
        return CaseRef(folder.name, folder.name, images, label)

    def _decathlon(self, root: Path) -> list[CaseRef]:
        try:
            spec = json.loads((root / "dataset.json").read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{root / 'dataset.json'}: not valid JSON ({exc})") from exc
        if "channel_names" in spec:  # nnU-Net v2
            ending = spec.get("file_ending", ".nii.gz")
            channels = len(spec["channel_names"])
            refs = []
            for label in sorted((root / "labelsTr").glob(f"*{ending}")):
                case = label.name[: -len(ending)]
                images = [root / "imagesTr" / f"{case}_{c:04d}{ending}" for c in range(channels)]
                for p in images:
                    if not p.is_file():
                        raise InputFileNotFoundError(f"{p}: channel file missing for {case}")
                refs.append(CaseRef(case, case, images, label))
            return refs
        refs = []
        for item in spec.get("training", []):
            if not isinstance(item, Mapping) or "image" not in item or "label" not in item:
                raise DataError(
                    f"{root / 'dataset.json'}: each 'training' entry needs 'image' and 'label'"
                )
            image, label = root / item["image"], root / item["label"]
            for p in (image, label):
                if not p.is_file():
                    raise InputFileNotFoundError(f"{p}: listed in {root / 'dataset.json'}")
            refs.append(CaseRef(_stem(image), _stem(image), [image], label))
        if not refs:
            raise DataError(f"{root / 'dataset.json'}: lists no training cases")
        return refs

    def read(self, ref: CaseRef) -> RawCase:
        """Modalities stacked as channels (4D files give one channel per volume)."""
        volumes = [read_volume(p, allow_4d=True) for p in ref.images]
        first = volumes[0]
        channels = []
        for v in volumes:
            if v.data.shape[:3] != first.data.shape[:3] or not np.allclose(
                v.affine, first.affine, atol=1e-3
            ):
                raise DataError(
                    f"{v.path}: its grid (shape {v.data.shape[:3]}, affine) differs from "
                    f"{first.path.name}'s {first.data.shape[:3]}; resample the case's volumes "
                    "onto one grid"
                )
            data = v.data if v.data.ndim == 4 else v.data[..., None]
            channels.extend(np.moveaxis(data, -1, 0))
        label = None
        if ref.label is not None:
            lab = read_volume(ref.label)
            if lab.data.shape != first.data.shape[:3] or not np.allclose(
                lab.affine, first.affine, atol=1e-3
            ):
                raise DataError(
                    f"{ref.label}: label grid (shape {lab.data.shape}) differs from the image "
                    f"{first.path.name} (shape {first.data.shape[:3]}) or its affine; the label "
                    "must be on the image's voxel grid"
                )
            label = np.asarray(lab.data)
            if np.issubdtype(label.dtype, np.floating):
                label = np.rint(label).astype(np.int64)
        image = np.stack([np.asarray(c, dtype=np.float32) for c in channels])
        grid = dataclasses.replace(first, data=None)  # the grid alone: no second copy
        return RawCase(ref, image, label, first.spacing, grid=grid)


def _matches(name: str, pattern: str) -> bool:
    """Case-insensitive glob match (``T1c*`` finds ``t1c.nii.gz`` too)."""
    return fnmatch.fnmatch(name.lower(), pattern.lower())


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# ---------------------------------------------------------------------------- figshare .mat


class FigshareMatSource(CaseSource):
    """The brain-tumour slices of Cheng et al.: a folder (or list) of ``.mat`` files.

    Cases are grouped by patient (``cjdata.PID``) so that splits never share a patient.
    """

    name = "figshare_mat"
    dims = 2

    def __init__(self, entries: Sequence[str | Path]) -> None:
        self.entries = [Path(e) for e in entries]

    def discover(self) -> list[CaseRef]:
        """Every ``.mat`` file, with its patient id read from the file."""
        from geounet.io.matlab import read_figshare_mat

        files: list[Path] = []
        for entry in self.entries:
            if entry.is_dir():
                files.extend(sorted(entry.glob("*.mat"), key=lambda p: natural_key(p.name)))
            elif entry.is_file():
                files.append(entry)
            else:
                raise InputFileNotFoundError(f"{entry}: not found (check data.images)")
        if not files:
            raise DataError(f"{', '.join(map(str, self.entries))}: no .mat files")
        refs = []
        for f in files:
            pid = read_figshare_mat(f).pid or f.stem
            refs.append(CaseRef(f.stem, pid, [f], f))
        return refs

    def read(self, ref: CaseRef) -> RawCase:
        """The slice as (1, H, W) and its tumour mask."""
        from geounet.io.matlab import read_figshare_mat

        s = read_figshare_mat(ref.images[0])
        label = s.mask if ref.label is not None else None
        ref.extra["tumour_type"] = s.label
        return RawCase(ref, s.image[None], label, (1.0, 1.0), grid=ref.images[0])


SOURCES: dict[str, type[CaseSource]] = {
    s.name: s for s in (FolderSource, NiftiSource, FigshareMatSource)
}
