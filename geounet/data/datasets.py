"""torchgeo datasets for scene imagery and labels (vector polygons or mask rasters)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import rasterio
import torch
from pyproj import CRS
from torchgeo.datasets import IntersectionDataset, RasterDataset, VectorDataset
from torchgeo.datasets.utils import GeoSlice

from geounet.data.objects import components, object_target
from geounet.errors import DataError, InvalidRasterError
from geounet.io.labels import rasterize_labels, read_labels
from geounet.io.raster import raster_info


class SceneImages(RasterDataset):
    """Multi-band GeoTIFF scenes, any band count, dtype and CRS (warped to the first's).

    Images are returned as float32 raw values; normalization lives in the model.
    """

    filename_glob = "*.tif"
    is_image = True

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
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
                f"data.bands {self.band_index} out of range: {files[0]} has {infos[0].count} bands"
            )
        super().__init__(files, crs=crs, res=res)
        self.band_indexes = self.band_index
        self.infos = infos


class RasterLabels(RasterDataset):
    """A mask raster of class ids (nearest-neighbour resampling).

    For two-class tasks any non-zero value is the foreground, so 0/255 masks work.
    """

    filename_glob = "*"
    is_image = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        crs: CRS,
        res,
        classes: Sequence[str],
        objects: tuple[int, int] | None = None,
    ):
        self.binary = len(classes) == 2
        self.objects = objects
        if not self.binary:
            _check_label_values(path, len(classes))
        super().__init__(str(path), crs=crs, res=res)

    def __getitem__(self, query: GeoSlice) -> dict[str, Any]:
        """The mask within ``query``; binarized for two-class tasks."""
        sample = super().__getitem__(query)
        if self.objects is not None:  # connected components are the objects
            inst = components(sample["mask"].numpy().squeeze(0) > 0)
            sample["mask"] = torch.from_numpy(object_target(inst, *self.objects).astype(np.int64))
        elif self.binary:
            sample["mask"] = (sample["mask"] > 0).long()
        return sample


def _check_label_values(path: str | os.PathLike[str], n_classes: int) -> None:
    """Refuse label rasters holding ids outside ``0..n_classes-1`` (checked on an overview)."""
    with rasterio.open(path) as src:
        scale = max(1, max(src.width, src.height) // 2048)
        shape = (max(1, src.height // scale), max(1, src.width // scale))
        values = np.unique(src.read(1, out_shape=shape))
    bad = values[(values < 0) | (values >= n_classes)]
    if bad.size:
        raise DataError(
            f"{path}: label values {bad[:5].tolist()} are not class ids 0..{n_classes - 1}; "
            "fix the mask or list all classes in data.classes"
        )


class VectorLabels(VectorDataset):
    """Label polygons from any OGR vector file, rasterized on each sample's grid.

    Unlike torchgeo's base class, the file is read and reprojected once, class names
    map to ids, and each query rasterizes only the polygons it touches. With ``objects``
    (border and contact widths in pixels) each polygon is burnt as its own object and the
    mask is the bit-packed footprint / border / contact target of
    :func:`~geounet.data.objects.object_target`.
    """

    filename_glob = "*"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        crs: CRS,
        res: tuple[float, float],
        class_attribute: str | None = None,
        class_names: Sequence[str] | None = None,
        layer: str | None = None,
        objects: tuple[int, int] | None = None,
    ) -> None:
        self.objects = objects
        self.labels = read_labels(
            path, crs=crs, class_attribute=class_attribute, class_names=class_names, layer=layer
        )
        super().__init__(str(path), crs=crs, res=res, layer=layer)

    def __getitem__(self, query: GeoSlice) -> dict[str, Any]:
        """Rasterize the polygons within ``query`` onto its pixel grid."""
        x, y, _ = self._disambiguate_slice(query)
        width = round((x.stop - x.start) / x.step)
        height = round((y.stop - y.start) / y.step)
        transform = rasterio.transform.from_bounds(x.start, y.start, x.stop, y.stop, width, height)
        hits = self.labels.iloc[
            self.labels.sindex.query(_box(x.start, y.start, x.stop, y.stop), predicate="intersects")
        ]
        if self.objects is not None:
            ids = hits.assign(class_id=hits.index.to_numpy() + 1)  # one id per polygon
            inst = rasterize_labels(ids, (height, width), transform, dtype="int32")
            mask = object_target(inst, *self.objects)
        else:
            mask = rasterize_labels(hits, (height, width), transform, dtype="uint8")
        return {"crs": self.crs, "bounds": query, "mask": torch.from_numpy(mask.astype(np.int64))}


def _box(xmin: float, ymin: float, xmax: float, ymax: float):
    import shapely

    return shapely.box(xmin, ymin, xmax, ymax)


def is_raster(path: str | os.PathLike[str]) -> bool:
    """True when GDAL opens ``path`` as a raster (mask labels), False for vector files."""
    try:
        with rasterio.open(path):
            return True
    except rasterio.errors.RasterioIOError:
        return False


def labelled_scenes(
    images: Sequence[str | os.PathLike[str]],
    labels: str | os.PathLike[str],
    *,
    classes: Sequence[str],
    res: float | None = None,
    bands: Sequence[int] | None = None,
    class_attribute: str | None = None,
    label_layer: str | None = None,
    objects: tuple[int, int] | None = None,
) -> IntersectionDataset:
    """Imagery and labels as one torchgeo dataset yielding ``image`` and ``mask``.

    Args:
        images: GeoTIFF scenes.
        labels: A vector file of polygons or a mask raster of class ids.
        classes: Class names (index = id).
        res: Resolution to sample at, in the CRS units of the first image.
        bands: 1-based band indexes to use.
        class_attribute: Vector attribute holding the class (name or id).
        label_layer: Layer of a multi-layer vector file.
        objects: Border and contact widths in pixels: masks become the bit-packed
            footprint / border / contact target (two-class tasks).

    Returns:
        The intersection dataset (in the first image's CRS).
    """
    image_ds = SceneImages(images, res=res, bands=bands)
    if is_raster(labels):
        try:
            label_ds = RasterLabels(
                labels, crs=image_ds.crs, res=image_ds.res, classes=classes, objects=objects
            )
        except DataError:
            raise
        except Exception as exc:
            raise InvalidRasterError(f"{labels}: cannot read the label raster ({exc})") from exc
    else:
        label_ds = VectorLabels(
            labels,
            crs=image_ds.crs,
            res=image_ds.res,
            class_attribute=class_attribute,
            class_names=classes,
            layer=label_layer,
            objects=objects,
        )
    try:
        return IntersectionDataset(image_ds, label_ds)
    except RuntimeError as exc:
        raise DataError(
            f"labels {labels} do not overlap the images {list(map(str, images))}; "
            "check that they cover the same area"
        ) from exc
