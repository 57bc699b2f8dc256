"""`seren.io.atomic_dir` never destroys what a user put somewhere (issue 16, item 6).

Before the fix `atomic_dir` replaced whatever path it was given: a user's folder was deleted and a
file replaced, with exit 0. Now a target is replaced only when it is missing, empty, or a directory
seren wrote (its `.seren-artifact` marker), unless `force`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seren.errors import ConfigError
from seren.io import ARTIFACT_MARKER, atomic_dir, check_out_dir, is_artifact


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SEREN_HOME", str(tmp_path / "home"))
    return work


def _write(target: Path, name: str = "new.txt") -> None:
    with atomic_dir(target) as tmp:
        (tmp / name).write_text("seren output")


def test_user_folder_is_refused_and_left_intact(here: Path) -> None:
    user = here / "photos"
    user.mkdir()
    (user / "cat.jpg").write_bytes(b"\xff\xd8 precious")
    with pytest.raises(ConfigError, match="non-empty directory seren did not write"):
        _write(user)
    assert (user / "cat.jpg").read_bytes() == b"\xff\xd8 precious"
    assert sorted(p.name for p in here.iterdir()) == ["photos"]  # no temp dir left behind


def test_file_target_is_refused_even_with_force(here: Path) -> None:
    f = here / "notes.txt"
    f.write_text("mine")
    for force in (False, True):
        with pytest.raises(ConfigError, match="is a file"):
            with atomic_dir(f, force=force) as tmp:
                (tmp / "x").write_text("y")
    assert f.read_text() == "mine"


@pytest.mark.parametrize("target", [".", "..", "../.."])
def test_cwd_and_parents_are_refused_even_with_force(here: Path, target: str) -> None:
    (here / "keep.txt").write_text("k")
    with pytest.raises(ConfigError, match="current directory or one of its parents"):
        check_out_dir(target, force=True)
    assert (here / "keep.txt").read_text() == "k"


def test_seren_output_is_marked_and_replaced(here: Path) -> None:
    out = here / "ds"
    _write(out, "v1.txt")
    assert is_artifact(out) and (out / ARTIFACT_MARKER).is_file()
    _write(out, "v2.txt")  # our own output: replaced without force
    assert sorted(p.name for p in out.iterdir()) == [ARTIFACT_MARKER, "v2.txt"]


def test_force_replaces_a_user_folder(here: Path) -> None:
    user = here / "old"
    user.mkdir()
    (user / "a.txt").write_text("a")
    with atomic_dir(user, force=True) as tmp:
        (tmp / "b.txt").write_text("b")
    assert sorted(p.name for p in user.iterdir()) == [ARTIFACT_MARKER, "b.txt"]


def test_user_files_added_during_the_write_are_not_deleted(here: Path) -> None:
    """The target is checked again just before the swap."""
    out = here / "out"
    with pytest.raises(ConfigError, match="seren did not write"):
        with atomic_dir(out) as tmp:
            (tmp / "x.txt").write_text("seren")
            out.mkdir()
            (out / "mine.txt").write_text("user")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in here.iterdir()) == ["out"]


def test_a_symlinked_target_is_replaced_without_touching_what_it_points_to(here: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    _write(real, "inside.txt")  # a seren artifact elsewhere ...
    link = here / "link"
    link.symlink_to(real)  # ... reached through a link
    _write(link, "fresh.txt")
    assert not link.is_symlink() and (link / "fresh.txt").is_file()
    assert (real / "inside.txt").read_text() == "seren output"


def test_empty_directory_and_state_under_seren_home_are_replaceable(here: Path, tmp_path: Path) -> None:
    empty = here / "empty"
    empty.mkdir()
    _write(empty)
    legacy = tmp_path / "home" / "exploration"  # written before the marker existed
    legacy.mkdir(parents=True)
    (legacy / "pair_table.parquet").write_text("old")
    assert is_artifact(legacy)
    _write(legacy)
    assert not (legacy / "pair_table.parquet").exists()
