"""atomic_output: rename on success, leave nothing on failure."""

from __future__ import annotations

import os
import stat

import pytest

from geounet.io.atomic import atomic_output


def _entries(folder):
    return sorted(p.name for p in folder.iterdir())


def test_success_renames(tmp_path):
    final = tmp_path / "out.tif"
    with atomic_output(final) as tmp:
        assert tmp.parent == final.parent
        assert tmp != final
        assert tmp.suffix == ".tif"  # drivers chosen by extension still work
        assert not tmp.exists()  # the writer creates it
        assert not final.exists()
        tmp.write_bytes(b"data")
    assert final.read_bytes() == b"data"
    assert _entries(tmp_path) == ["out.tif"]


def test_success_removes_sidecars(tmp_path):
    final = tmp_path / "out.tif"
    with atomic_output(final) as tmp:
        tmp.write_bytes(b"data")
        tmp.with_name(tmp.name + ".aux.xml").write_text("<x/>")
    assert _entries(tmp_path) == ["out.tif"]


def test_exception_leaves_nothing(tmp_path):
    final = tmp_path / "out.gpkg"
    with pytest.raises(KeyError), atomic_output(final) as tmp:
        tmp.write_bytes(b"half")
        tmp.with_name(tmp.name + ".aux.xml").write_text("<x/>")
        raise KeyError("interrupted")
    assert _entries(tmp_path) == []


def test_exception_keeps_existing_file(tmp_path):
    final = tmp_path / "out.tif"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(final) as tmp:
        tmp.write_bytes(b"new")
        raise RuntimeError
    assert final.read_bytes() == b"old"
    assert _entries(tmp_path) == ["out.tif"]


def test_overwrites_existing_file(tmp_path):
    final = tmp_path / "out.tif"
    final.write_bytes(b"old")
    with atomic_output(final) as tmp:
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new"
    assert _entries(tmp_path) == ["out.tif"]


def test_parent_directory_created(tmp_path):
    final = tmp_path / "a" / "b" / "out.tif"
    with atomic_output(final) as tmp:
        assert tmp.parent.is_dir()
        tmp.write_text("x")
    assert final.read_text() == "x"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_permissions_follow_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        final = tmp_path / "out.tif"
        with atomic_output(final) as tmp:
            tmp.write_text("x")
            os.chmod(tmp, 0o600)  # like mkstemp would leave it
    finally:
        os.umask(old)
    assert stat.S_IMODE(final.stat().st_mode) == mode
