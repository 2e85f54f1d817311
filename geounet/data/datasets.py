"""torchgeo datasets for scene imagery and labels (vector features or mask rasters).

Labels are read as land-cover and crop users have them: codes mapped to classes by a
:class:`~geounet.io.labelmap.LabelSpec`, a raster's nodata and NULL attributes as "not
labelled" (:data:`~geounet.io.labelmap.IGNORE`), and sparse polygons or points whose
surroundings are unlabelled rather than background. Image nodata is kept out of
training: bands without data at a pixel get the band mean (0 after normalization, as at
prediction) and pixels where no band has data are not labelled.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
import torch
from pyproj import CRS
from torchgeo.datasets import IntersectionDataset, RasterDataset, VectorDataset
from torchgeo.datasets.utils import GeoSlice

from geounet.data.objects import boundary_target, components, object_target
from geounet.errors import DataError, InvalidRasterError
from geounet.io.labelmap import IGNORE, LabelSpec
from geounet.io.labels import rasterize_labels, read_labels
from geounet.io.raster import raster_info, read_errors

PathLike = str | os.PathLike[str]


class SceneImages(RasterDataset):
    """Multi-band GeoTIFF scenes, any band count, dtype and CRS (warped to the first's).

    Images are returned as float32 raw values; normalization lives in the model.
    ``nodata`` is the value torchgeo fills missing pixels of every band with.
    """

    filename_glob = "*.tif"
    is_image = True

    def __init__(
        self,
        paths: Sequence[PathLike],
        *,
        crs: CRS | None = None,
        res: float | tuple[float, float] | None = None,
        bands: Sequence[int] | None = None,
    ) -> None:
        files = [str(p) for p in paths]
        infos = [raster_info(p) for p in files]
        counts = {i.count for i in infos}
        if len(counts) > 1:
            raise DataError(f"images have different band counts {sorted(counts)}: {files}")
        self.filename_glob = "*"
        self.all_bands = infos[0].band_names
        self.band_index = list(bands) if bands else list(range(1, infos[0].count + 1))
        if max(self.band_index) > infos[0].count or min(self.band_index) < 1:
            raise DataError(
                f"{files[0]}: data.bands {self.band_index} out of range; the scene has "
                f"{infos[0].count} bands (1-based numbers 1..{infos[0].count})"
            )
        super().__init__(files, crs=crs, res=res)
        self.band_indexes = self.band_index
        self.infos = infos
        self.nodata = infos[0].nodata  # rasterio's merge fills every band's gaps with it
        # bands with nodata values of their own (stacked band files) have gaps of their
        # own; bands sharing one value mark a pixel missing only where all hold it (GDAL)
        self.per_band_nodata = len(set(infos[0].nodatas)) > 1


class NodataFill:
    """Transform of image + label samples: bands without data get ``fill`` (the band
    means, set once the statistics are known), and pixels where no band has data are
    not labelled.

    Args:
        nodata: The value missing pixels hold (``None``: the images have none).
        per_band: Each band has gaps of its own (stacked band files); otherwise a pixel
            is missing only where every band holds ``nodata`` (GDAL's dataset mask).
    """

    def __init__(self, nodata: float | None, per_band: bool = False) -> None:
        self.nodata, self.per_band = nodata, per_band
        self.fill: torch.Tensor | None = None

    def missing(self, image: torch.Tensor) -> torch.Tensor | None:
        """Boolean (C, H, W) of missing values, or None without nodata."""
        if self.nodata is None:
            return None
        missing = image.isnan() if math.isnan(self.nodata) else image == self.nodata
        return missing if self.per_band else missing.all(0, keepdim=True).expand_as(missing)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Fill missing band values and unlabel pixels without any data."""
        missing = self.missing(sample["image"])
        if missing is None or not missing.any():
            return sample
        image = sample["image"].clone()
        fill = self.fill if self.fill is not None else torch.zeros(image.shape[0])
        image = torch.where(missing, fill.to(image.dtype)[:, None, None], image)
        sample = dict(sample, image=image)
        if "mask" in sample:
            sample["mask"] = sample["mask"].masked_fill(missing.all(0), IGNORE)
        return sample


class RasterLabels(RasterDataset):
    """Mask rasters of class codes (nearest-neighbour resampling, any CRS), one or
    several (one per scene); codes become class ids through ``spec``, the file's nodata
    and ignored values become :data:`IGNORE`.
    """

    filename_glob = "*"
    is_image = False

    def __init__(
        self,
        paths: Sequence[PathLike],
        *,
        crs: CRS,
        res: tuple[float, float],
        spec: LabelSpec,
        objects: tuple[str, int, int] | None = None,
    ) -> None:
        self.spec, self.objects = spec, objects
        files = [str(p) for p in paths]
        self.path = files[0]
        with rasterio.open(files[0]) as src:
            self.nodata = src.nodata
        ids = [_check_label_values(path, spec) for path in files]
        # class ids seen on the files' overviews (rare small classes may be missed)
        self.present = set(np.unique(np.concatenate(ids)).tolist()) - {IGNORE}
        super().__init__(files, crs=crs, res=res)

    def __getitem__(self, query: GeoSlice) -> dict[str, Any]:
        """Class ids within ``query`` (:data:`IGNORE` where not labelled)."""
        sample = super().__getitem__(query)
        raw = sample["mask"].numpy()
        classes = self.spec.apply(raw, self.path, nodata=self.nodata)
        if self.objects is not None:  # connected components are the objects
            kind, border, contact = self.objects
            labelled = (classes > 0) & (classes != IGNORE)
            inst = components(labelled) if kind == "footprint" else _class_components(classes)
            if kind == "footprint":
                target = object_target(inst, border, contact)
            else:
                target = boundary_target(inst, np.where(labelled, classes, 0), border, contact)
            classes = np.where(classes == IGNORE, IGNORE, target)
        sample["mask"] = torch.from_numpy(classes.astype(np.int64))
        return sample


def _class_components(classes: np.ndarray) -> np.ndarray:
    """Connected components of each class (> 0, labelled) as one instance map."""
    out = np.zeros(classes.shape, np.int32)
    for c in np.unique(classes):
        if c == 0 or c == IGNORE:
            continue
        comp = components(classes == c)
        out = np.where(comp > 0, comp + out.max(), out)
    return out


def _check_label_values(path: PathLike, spec: LabelSpec) -> np.ndarray:
    """Refuse label rasters with codes that map to no class (checked on an overview);
    the class ids found."""
    with rasterio.open(path) as src, read_errors(path, "label values"):
        scale = max(1, max(src.width, src.height) // 2048)
        shape = (max(1, src.height // scale), max(1, src.width // scale))
        values = np.unique(src.read(1, out_shape=shape))
        nodata = src.nodata
    return np.unique(spec.apply(values, path, nodata=nodata))


class VectorLabels(VectorDataset):
    """Label features from one or several OGR vector files, rasterized on each sample's
    grid.

    Unlike torchgeo's base class, the files are read and reprojected once, attribute
    values map to classes through ``spec``, and each query rasterizes only the features
    it touches. Pixels outside every feature are background, or not labelled with
    ``sparse`` (where points are labels too). With ``objects`` each polygon is burnt as
    its own object: ``("footprint", border_px, contact_px)`` gives the bit-packed
    footprint / border / contact target of :func:`~geounet.data.objects.object_target`,
    ``("boundary", border_px, boundary_id)`` the class target with a boundary class of
    :func:`~geounet.data.objects.boundary_target`.
    """

    filename_glob = "*"

    def __init__(
        self,
        paths: Sequence[PathLike],
        *,
        crs: CRS,
        res: tuple[float, float],
        class_attribute: str | None = None,
        spec: LabelSpec,
        layer: str | None = None,
        objects: tuple[str, int, int] | None = None,
        sparse: bool = False,
        line_width_m: float | None = None,
    ) -> None:
        self.objects, self.sparse = objects, sparse
        frames = [
            read_labels(
                p,
                crs=crs,
                class_attribute=class_attribute,
                spec=spec,
                layer=layer,
                points=sparse,
                line_width_m=line_width_m,
            )
            for p in paths
        ]
        self.labels = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=crs)
        self.present = set(self.labels["class_id"].unique().tolist()) - {IGNORE}
        self.null_features = sum(f.attrs.get("null_features", 0) for f in frames)
        super().__init__([str(p) for p in paths], crs=crs, res=res, layer=layer)
        # torchgeo indexes the raw features' extent; buffered centre lines reach further
        extents = {
            os.path.realpath(p): shapely.box(*f.total_bounds)
            for p, f in zip(paths, frames, strict=True)
            if not f.empty
        }
        geoms = [
            extents.get(os.path.realpath(path), geom)
            for path, geom in zip(self.index["filepath"], self.index.geometry, strict=True)
        ]
        self.index = self.index.set_geometry(geoms, crs=self.index.crs)

    def __getitem__(self, query: GeoSlice) -> dict[str, Any]:
        """Rasterize the features within ``query`` onto its pixel grid."""
        x, y, _ = self._disambiguate_slice(query)
        width = round((x.stop - x.start) / x.step)
        height = round((y.stop - y.start) / y.step)
        shape = (height, width)
        transform = rasterio.transform.from_bounds(x.start, y.start, x.stop, y.stop, width, height)
        hits = self.labels.iloc[
            self.labels.sindex.query(_box(x.start, y.start, x.stop, y.stop), predicate="intersects")
        ]
        fill = IGNORE if self.sparse else 0
        if self.objects is None:
            mask = rasterize_labels(hits, shape, transform, dtype="uint8", fill=fill)
        else:
            kind, a, b = self.objects
            known = hits[hits["class_id"] != IGNORE]
            ids = known.assign(class_id=known.index.to_numpy() + 1)  # one id per polygon
            inst = rasterize_labels(ids, shape, transform, dtype="int32")
            if kind == "footprint":
                mask = object_target(inst, a, b)
            else:
                classes = rasterize_labels(known, shape, transform, dtype="uint8")
                mask = boundary_target(inst, classes, a, b)
            unlabelled = hits[hits["class_id"] == IGNORE]
            if not unlabelled.empty:
                mask[rasterize_labels(unlabelled, shape, transform) > 0] = IGNORE
        return {"crs": self.crs, "bounds": query, "mask": torch.from_numpy(mask.astype(np.int64))}


def _box(xmin: float, ymin: float, xmax: float, ymax: float):
    return shapely.box(xmin, ymin, xmax, ymax)


def is_raster(path: PathLike | Sequence[PathLike]) -> bool:
    """True when GDAL opens ``path`` (or the first of several) as a raster (mask
    labels), False for vector files."""
    if not isinstance(path, str | os.PathLike):
        path = path[0]
    try:
        with rasterio.open(path):
            return True
    except rasterio.errors.RasterioIOError:
        return False


def labelled_scenes(
    images: Sequence[PathLike],
    labels: PathLike | Sequence[PathLike],
    *,
    classes: Sequence[str],
    res: float | None = None,
    bands: Sequence[int] | None = None,
    class_attribute: str | None = None,
    label_layer: str | None = None,
    objects: tuple[str, int, int] | tuple[int, int] | None = None,
    spec: LabelSpec | None = None,
    sparse: bool = False,
    line_width_m: float | None = None,
) -> IntersectionDataset:
    """Imagery and labels as one torchgeo dataset yielding ``image`` and ``mask``.

    Args:
        images: GeoTIFF scenes.
        labels: A vector file or a mask raster of class codes for every scene, or a list
            of them (one per scene).
        classes: Class names (index = id).
        res: Resolution to sample at, in the CRS units of the first image.
        bands: 1-based band indexes to use.
        class_attribute: Vector attribute holding the class (name, id or code).
        label_layer: Layer of a multi-layer vector file.
        objects: ``(target, border_px, contact_px)`` with target ``"footprint"`` (bit-
            packed footprint / border / contact masks, two classes) or ``"boundary"``
            (class ids plus a boundary class, id ``len(classes)``); a pair means
            ``"footprint"``.
        spec: How raw label values become class ids (default: values are class ids, or
            class names for attributes).
        sparse: Pixels outside every vector feature are not labelled (points allowed).
        line_width_m: Vector labels: centre lines (roads) are buffered to this width in
            metres on the ground.

    Returns:
        The intersection dataset (in the first image's CRS); its ``transforms`` is the
        :class:`NodataFill` of the images.
    """
    files = [labels] if isinstance(labels, str | os.PathLike) else list(labels)
    if not files:
        raise DataError("no label files given; set data.labels")
    spec = spec or LabelSpec(len(classes), names=tuple(classes))
    if objects is not None and len(objects) == 2:
        objects = ("footprint", *objects)
    if objects is not None and objects[0] == "boundary":
        objects = ("boundary", objects[1], len(classes))
    image_ds = SceneImages(images, res=res, bands=bands)
    kinds = {is_raster(f) for f in files}
    if len(kinds) > 1:
        raise DataError(f"data.labels mixes rasters and vector files: {list(map(str, files))}")
    if kinds.pop():
        try:
            label_ds = RasterLabels(
                files, crs=image_ds.crs, res=image_ds.res, spec=spec, objects=objects
            )
        except DataError:
            raise
        except Exception as exc:
            raise InvalidRasterError(f"{files[0]}: cannot read the label raster ({exc})") from exc
    else:
        label_ds = VectorLabels(
            files,
            crs=image_ds.crs,
            res=image_ds.res,
            class_attribute=class_attribute,
            spec=spec,
            layer=label_layer,
            objects=objects,
            sparse=sparse,
            line_width_m=line_width_m,
        )
    fill = NodataFill(image_ds.nodata, image_ds.per_band_nodata)
    try:
        dataset = IntersectionDataset(image_ds, label_ds, transforms=fill)
    except RuntimeError as exc:
        raise DataError(
            f"labels {', '.join(map(str, files))} do not overlap the images "
            f"{', '.join(map(str, images))}; check that they cover the same area"
        ) from exc
    if len(files) > 1 and len(files) == len(images):
        _own_labels_only(dataset, images, files)
    return dataset


def _own_labels_only(
    dataset: IntersectionDataset, images: Sequence[PathLike], files: Sequence[PathLike]
) -> None:
    """With one label file per scene, keep each scene's pairing with its own file only
    (adjacent tiles would otherwise pair with their neighbour's labels along a sliver)."""
    own = {os.path.realpath(i): os.path.realpath(f) for i, f in zip(images, files, strict=True)}
    index = dataset.index
    keep = [
        own.get(os.path.realpath(a), os.path.realpath(b)) == os.path.realpath(b)
        for a, b in zip(index["filepath_1"], index["filepath_2"], strict=True)
    ]
    if any(keep):
        dataset.index = index[keep]
