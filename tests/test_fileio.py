"""Atomic writes: the old file or the new one, never a part, and no temp file left behind."""

from __future__ import annotations

import json
import os

import pytest

from diffrl import fileio


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "file.bin"
    fileio.write_atomic(path, b"first")
    fileio.write_atomic(path, b"second, longer content")
    assert path.read_bytes() == b"second, longer content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]
    fileio.write_json_atomic(tmp_path / "x.json", {"b": 1, "a": [1, 2]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, 2], "b": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin", "x.json"]


def test_write_atomic_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "file.bin"
    fileio.write_atomic(path, b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        fileio.write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]  # the temp file is removed
