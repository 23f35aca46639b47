"""emodna.atomic: a file is replaced whole or not at all."""

import pytest

from emodna.atomic import atomic_write


def test_atomic_write_replaces_whole_and_creates_the_folder(tmp_path):
    path = tmp_path / "a" / "b.txt"
    assert atomic_write(path, lambda p: p.write_text("one")) == path
    atomic_write(path, lambda p: p.write_text("two"))
    assert path.read_text() == "two" and [f.name for f in path.parent.iterdir()] == ["b.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("old")

    def half(p):
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half)
    assert path.read_text() == "old" and [f.name for f in tmp_path.iterdir()] == ["b.txt"]
