"""Sources: chip folders, NIfTI cases (folders, MSD, nnU-Net, lists), figshare .mat."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_cases import (
    blob_case,
    chip_folder,
    decathlon,
    figshare_v5,
    figshare_v73,
    nifti_cases,
    nnunet,
    write_nifti,
)

from geounet.data.sources import FigshareMatSource, FolderSource, NiftiSource
from geounet.errors import DataError


def test_one_folder_with_patterns_and_rgb_masks(tmp_path: Path) -> None:
    root = chip_folder(tmp_path / "chips", n=3)
    source = FolderSource(root, image_pattern="*_sat.png", mask_pattern="*_mask.png")
    refs = source.discover()
    assert [r.id for r in refs] == ["0", "1", "2"]
    case = source.read(refs[1])
    assert case.image.shape == (3, 64, 64) and case.label.shape == (64, 64)
    assert set(np.unique(case.label)) == {0, 255}


def test_two_folders_by_stem(tmp_path: Path) -> None:
    from PIL import Image

    for folder in ("img", "lab"):
        (tmp_path / folder).mkdir()
    for i in (1, 2, 10):
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(tmp_path / "img" / f"{i}.png")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "lab" / f"{i}.png")
    refs = FolderSource(tmp_path / "img", tmp_path / "lab").discover()
    assert [r.id for r in refs] == ["1", "2", "10"]  # natural order


def test_images_without_masks_name_the_folder(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "img" / "a.png")
    with pytest.raises(DataError, match=r"lab: no masks found for the 1 images"):
        FolderSource(tmp_path / "img", tmp_path / "lab").discover()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "lab" / "b.png")
    with pytest.raises(DataError, match=r"a\.png: no mask matches it"):
        FolderSource(tmp_path / "img", tmp_path / "lab").discover()
    with pytest.raises(DataError, match=r"data\.image_pattern"):
        FolderSource(tmp_path / "img").discover()


def test_nifti_case_folders_by_glob(tmp_path: Path) -> None:
    nifti_cases(tmp_path / "cases", n=3)
    source = NiftiSource(
        [str(tmp_path / "cases" / "case_*")], modalities=["t1c*", "flair*"], label_file="seg*"
    )
    refs = source.discover()
    assert [r.id for r in refs] == ["case_0", "case_1", "case_2"]
    case = source.read(refs[0])
    assert case.image.shape == (2, 24, 28, 16)
    assert case.spacing == pytest.approx((0.9, 1.1, 2.5))
    _, flair, label = blob_case(seed=0)
    assert np.allclose(case.image[1], flair) and np.array_equal(case.label, label)


def test_decathlon_and_nnunet_folders(tmp_path: Path) -> None:
    msd = NiftiSource([decathlon(tmp_path / "msd")])
    refs = msd.discover()
    assert len(refs) == 3 and refs[0].id == "brain_000"
    assert msd.read(refs[0]).image.shape == (2, 24, 28, 16)  # 4D image: channels
    nn = NiftiSource([nnunet(tmp_path / "nn")])
    refs = nn.discover()
    assert [p.name for p in refs[0].images] == ["toy_000_0000.nii.gz", "toy_000_0001.nii.gz"]
    assert nn.read(refs[0]).image.shape[0] == 2


def test_plain_list_of_cases(tmp_path: Path) -> None:
    folders = nifti_cases(tmp_path, n=2)
    entries = [
        {
            "images": [str(f / "t1c.nii.gz"), str(f / "flair.nii.gz")],
            "label": str(f / "seg.nii.gz"),
            "group": "patient_a",
        }
        for f in folders
    ]
    refs = NiftiSource(entries).discover()
    assert [r.group for r in refs] == ["patient_a", "patient_a"]


def test_volume_and_label_mismatch_is_named(tmp_path: Path) -> None:
    folder = nifti_cases(tmp_path, n=1)[0]
    write_nifti(folder / "seg.nii.gz", np.zeros((24, 28, 15), np.int16))
    source = NiftiSource([folder], modalities=["t1c*", "flair*"], label_file="seg*")
    with pytest.raises(DataError, match=r"seg\.nii\.gz: label grid .* differs"):
        source.read(source.discover()[0])
    other = np.eye(4)
    write_nifti(folder / "flair.nii.gz", np.zeros((24, 28, 16), np.float32), other)
    with pytest.raises(DataError, match=r"flair\.nii\.gz: its grid"):
        source.read(source.discover()[0])


def test_missing_modality_is_named(tmp_path: Path) -> None:
    folder = nifti_cases(tmp_path, n=1)[0]
    source = NiftiSource([folder], modalities=["t2*"], label_file="seg*")
    with pytest.raises(DataError, match=r"case_0: 0 files match modality 't2\*'"):
        source.discover()


def test_figshare_groups_by_patient(tmp_path: Path) -> None:
    figshare_v73(tmp_path / "1.mat", pid="111", size=256)
    figshare_v73(tmp_path / "2.mat", pid="111", size=256, seed=1)
    figshare_v5(tmp_path / "10.mat", pid="222")
    source = FigshareMatSource([tmp_path])
    refs = source.discover()
    assert [(r.id, r.group) for r in refs] == [("1", "111"), ("2", "111"), ("10", "222")]
    case = source.read(refs[0])
    assert case.image.shape == (1, 256, 256) and case.label.max() == 1


def test_case_glob_skips_stray_files_and_msd_entries_are_checked(tmp_path: Path) -> None:
    import json

    nifti_cases(tmp_path / "cases", n=2)
    (tmp_path / "cases" / "name_mapping.csv").write_text("a,b\n")
    source = NiftiSource(
        [str(tmp_path / "cases" / "*")], modalities=["t1c*", "flair*"], label_file="seg*"
    )
    assert len(source.discover()) == 2
    msd = decathlon(tmp_path / "msd", n=1)
    (msd / "dataset.json").write_text(json.dumps({"training": [{"image": "x.nii.gz"}]}))
    with pytest.raises(DataError, match="needs 'image' and 'label'"):
        NiftiSource([msd]).discover()
