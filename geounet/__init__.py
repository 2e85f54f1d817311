"""geounet: segment geospatial imagery with U-Net models.

Importing the package does no work; heavy dependencies (torch, rasterio, ...) are
imported by the submodules that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
