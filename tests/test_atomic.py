"""Crash-safe writes: unique temporary names, the umask, and stale temporary files."""

from __future__ import annotations

import os
import stat

import pytest

from lit_al.atomic import atomic_write_text, atomic_write_with, remove_stale_temp_files


def test_atomic_write_respects_the_umask_and_leaves_no_temp(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")

    class Boom(Exception):
        pass

    def write(handle):
        handle.write(b"half")
        raise Boom

    with pytest.raises(Boom):
        atomic_write_with(tmp_path / "a.txt", write)
    assert (tmp_path / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_stale_temp_files_are_removed_and_nothing_else(tmp_path):
    (tmp_path / ".state.json.k2j3.tmp").write_text("killed mid-write")
    (tmp_path / "notes.tmp").write_text("not ours: no leading dot")
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / "rounds" / "round_000").mkdir(parents=True)
    (tmp_path / "rounds" / "round_000" / ".selected.csv.x1.tmp").write_text("killed mid-write")
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == [".selected.csv.x1.tmp", ".state.json.k2j3.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp", "rounds", "state.json"]
    assert list((tmp_path / "rounds" / "round_000").iterdir()) == []


def test_the_file_is_synced_before_the_rename_and_its_folder_after(tmp_path, monkeypatch):
    """Without the folder's fsync a power cut after the rename can bring back the old file (or none)."""
    target = tmp_path / "state.json"
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            same = os.path.samestat(info, os.stat(tmp_path))
            events.append(("fsync", "run folder" if same else "another folder"))
        else:
            events.append(("fsync", "file"))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", os.path.basename(os.fspath(dst))))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_text(target, "{}")
    assert events == [("fsync", "file"), ("rename", "state.json"), ("fsync", "run folder")]
    assert target.read_text() == "{}"
