"""Real medical and microscopy data in ../shared/data: BRATS volumes, the hippocampus
volume, ISBI 2012 membranes, DSB nuclei and LoveDA chips (each skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import geounet.api as gu
from geounet.config import load_config
from geounet.data.cases import Preprocess, prepare_case
from geounet.data.sources import FolderSource, NiftiSource
from geounet.io.labelmap import LabelSpec
from geounet.io.nifti import read_volume
from geounet.train.cases import label_spec, make_source

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"


def _needs(name: str):
    return pytest.mark.skipif(not (DATA / name).exists(), reason=f"../shared/data/{name} absent")


@_needs("brats2013_nifti")
def test_brats_cases_channels_regions_and_slices() -> None:
    config = load_config(REPO / "configs" / "brain_tumour_3d.yaml")
    config.data.images = [str(DATA / "brats2013_nifti" / "train" / "*")]
    source = make_source(config.data)
    refs = source.discover()
    assert [r.id for r in refs] == ["brats_2013_pat0005_1", "brats_2013_pat0006_1"]
    raw = source.read(refs[0])
    assert raw.image.shape == (2, 240, 240, 155) and raw.spacing == pytest.approx((1, 1, 1))
    classes = label_spec(config.data).apply(raw.label, refs[0].label)
    whole, core, enhancing = (np.isin(classes, ids).sum() for ids in ([1, 2, 3], [2, 3], [3]))
    assert whole == np.isin(raw.label, [1, 2, 3, 4]).sum() > core > enhancing > 0
    case = prepare_case(
        raw,
        Preprocess(slice_axis="axial", normalize="zscore", mask="nonzero"),
        LabelSpec(2),
        dims=2,
    )
    assert case.image.shape == (2, 155, 240, 240)  # axial slices first


@_needs("hippocampus_msd")
def test_hippocampus_volume_trains_and_predicts_on_its_grid(tmp_path: Path) -> None:
    root = DATA / "hippocampus_msd"
    case = (
        f"{{images: [{root / 'hippocampus.nii.gz'}], label: {root / 'hippocampus_label.nii.gz'}}}"
    )
    result = gu.train(
        None,
        [
            "data.source=nifti",
            f"data.cases=[{case}]",
            f"data.val_images=[{root}]",
            "data.modalities=['hippocampus.nii.gz']",
            "data.label_file='hippocampus_label.nii.gz'",
            "data.classes=[background, anterior, posterior]",
            "data.normalization=case_zscore",
            "model.name=unet3d",
            "model.arguments={width: 4, depth: 2}",
            "train.tile_size=[32, 32, 32]",
            "train.batch_size=2",
            "train.samples_per_epoch=4",
            "train.max_epochs=1",
            f"run_dir={tmp_path / 'run'}",
        ],
        progress=False,
    )
    out = tmp_path / "seg.nii.gz"
    gu.predict(result.model_path, root / "hippocampus.nii.gz", out)
    seg, image = read_volume(out), read_volume(root / "hippocampus.nii.gz")
    assert seg.data.shape == (35, 51, 35) and np.allclose(seg.affine, image.affine)
    assert set(np.unique(read_volume(root / "hippocampus_label.nii.gz").data)) == {0, 1, 2}


@_needs("isbi2012_membranes")
def test_isbi_slices_and_label_map() -> None:
    config = load_config(REPO / "configs" / "isbi2012.yaml")
    config.data.images = [str(DATA / "isbi2012_membranes" / "train" / "image")]
    config.data.labels = str(DATA / "isbi2012_membranes" / "train" / "label")
    source = make_source(config.data)
    refs = source.discover()
    assert len(refs) == 25 and refs[-1].id == "24"
    raw = source.read(refs[0])
    classes = label_spec(config.data).apply(raw.label, refs[0].label)
    assert 0.1 < classes.mean() < 0.4  # membranes are a fifth of the pixels or so


@_needs("dsb2018_nuclei")
def test_dsb_nuclei_chip_and_instance_mask() -> None:
    source = FolderSource(
        DATA / "dsb2018_nuclei", image_pattern="img*.tif", mask_pattern="mask*.tif"
    )
    (ref,) = source.discover()
    raw = source.read(ref)
    assert raw.image.shape[1:] == (512, 512)
    assert len(np.unique(raw.label)) - 1 == 125  # instance ids
    binary = LabelSpec(2).apply(raw.label, ref.label)
    assert set(np.unique(binary)) == {0, 1}


@_needs("loveda_landcover")
def test_loveda_chips_map_every_code() -> None:
    config = load_config(REPO / "configs" / "loveda.yaml")
    config.data.images = [str(DATA / "loveda_landcover" / "images")]
    config.data.labels = str(DATA / "loveda_landcover" / "labels")
    source = make_source(config.data)
    spec = label_spec(config.data)
    for ref in source.discover():
        raw = source.read(ref)
        classes = spec.apply(raw.label, ref.label)
        assert classes.max() == 255 or classes.max() <= 6
        assert ((classes == 255) == (raw.label == 0)).all()


@_needs("brats2013_nifti")
def test_nifti_source_rejects_a_label_on_another_grid(tmp_path: Path) -> None:
    import nibabel as nib

    patient = DATA / "brats2013_nifti" / "train" / "brats_2013_pat0005_1"
    case = tmp_path / "case"
    case.mkdir()
    for name in ("T1c_subtrMeanDivStd.nii.gz", "Flair_subtrMeanDivStd.nii.gz"):
        (case / name).symlink_to(patient / name)
    label = nib.load(patient / "OTMultiClass.nii.gz")
    nib.save(
        nib.Nifti1Image(np.asarray(label.dataobj)[:, :, :100], label.affine),
        case / "OTMultiClass.nii.gz",
    )
    source = NiftiSource([case], modalities=["T1c*", "Flair*"], label_file="OTMultiClass*")
    with pytest.raises(Exception, match="label grid"):
        source.read(source.discover()[0])


TINY_RUN = [
    "model.arguments={width: 4, depth: 2}",
    "train.tile_size=64",
    "train.batch_size=4",
    "train.samples_per_epoch=8",
    "train.max_epochs=1",
]


@_needs("loveda_landcover")
def test_loveda_preset_trains_and_predicts_a_chip(tmp_path: Path) -> None:
    from PIL import Image

    root = DATA / "loveda_landcover"
    result = gu.train(
        REPO / "configs" / "loveda.yaml",
        [
            f"data.images=[{root / 'images'}]",
            f"data.labels={root / 'labels'}",
            f"run_dir={tmp_path / 'run'}",
            *TINY_RUN,
        ],
        progress=False,
    )
    out = tmp_path / "2.png"
    prediction = gu.predict(result.model_path, root / "images" / "2.png", out)
    with Image.open(out) as img:
        assert img.size == (1024, 1024) and img.mode == "P"
        assert np.asarray(img).max() < 7
    assert sum(prediction.class_pixels.values()) == 1024 * 1024


@_needs("deepglobe_roads")
def test_deepglobe_rgb_masks_by_threshold(tmp_path: Path) -> None:
    root = DATA / "deepglobe_roads"
    result = gu.train(
        None,
        [
            "data.source=folders",
            f"data.images=[{root}]",
            "data.image_pattern='*_sat.jpg'",
            "data.mask_pattern='*_mask.png'",
            "data.mask_threshold=128",
            "data.classes=[background, road]",
            "data.split=ordered",
            "data.val_fraction=0.34",
            f"run_dir={tmp_path / 'run'}",
            *TINY_RUN,
        ],
        progress=False,
    )
    evaluation = gu.evaluate(
        result.model_path, tmp_path / "e", config=tmp_path / "run" / "config.yaml"
    )
    (row,) = evaluation.metrics["cases"]
    assert row["case"] == "343" and row["road"]["true_voxels"] > 5_000
