"""Write outputs atomically: never leave a half-written file at the user's path."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file keeps the final suffix so that drivers chosen by extension
    (GDAL, OGR) behave the same. On any exception the temporary file is removed and
    ``path`` is left untouched.

    Args:
        path: The final output path. Its parent directory is created if missing.

    Yields:
        A temporary path in the same directory to write to.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix=f".partial{final.suffix}", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers (GDAL, OGR) want to create the file themselves
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, *tmp.parent.glob(tmp.name + ".*")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def write_yaml(data: object, path: str | os.PathLike[str]) -> Path:
    """Write plain data as YAML (keys in their order), atomically."""
    import yaml

    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    return Path(path)


def require_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path; one clear error when nothing is there.

    Raises:
        InputFileNotFoundError: If the path does not exist.
    """
    from geounet.errors import InputFileNotFoundError

    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"{p}: file not found; check the path")
    return p
