"""renderstate.files.output_path_of: a file below the media root becomes its stored path."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from renderstate import InvalidOutputPathError, validate_output_path
from renderstate.files import output_path_of


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "projects" / "42").mkdir(parents=True)
    (root / "projects" / "42" / "final.mp4").write_bytes(b"v")
    return root


def test_a_file_below_the_root_becomes_its_url_relative_path(media: Path) -> None:
    """The app's hand-written helper, done once: the path complete() should store."""
    path = output_path_of(media / "projects" / "42" / "final.mp4", media_root=media)
    assert path == "projects/42/final.mp4"
    assert validate_output_path(path) == path
    assert output_path_of(str(media / "new" / "v.mp4"), media_root=str(media)) == "new/v.mp4"


def test_relative_paths_are_relative_to_the_working_directory(
    media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both arguments may be relative, as Django's MEDIA_ROOT often is in development."""
    monkeypatch.chdir(media.parent)
    assert output_path_of("media/projects/42/final.mp4", media_root="media") == (
        "projects/42/final.mp4"
    )
    assert output_path_of("media/projects/../x.mp4", media_root="media") == "x.mp4"


@pytest.mark.parametrize(
    "outside",
    [
        "../secret.mp4",
        "projects/../../secret.mp4",
        "../media-other/x.mp4",  # a sibling whose name starts with the root's
    ],
)
def test_dot_dot_out_of_the_root_is_refused(media: Path, outside: str) -> None:
    """'..' leading out of the media root: a typed error that says why and what to pass."""
    with pytest.raises(InvalidOutputPathError) as info:
        output_path_of(media / outside, media_root=media)
    message = str(info.value)
    assert "outside the media root" in message
    assert "Pass a file below the media root" in message
    assert "relative POSIX path" not in message
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == message


def test_the_root_itself_is_refused(media: Path) -> None:
    """The media root is not a file below it."""
    with pytest.raises(InvalidOutputPathError, match=r"media root .* itself"):
        output_path_of(media, media_root=media)
    with pytest.raises(InvalidOutputPathError, match="itself"):
        output_path_of(media / "projects" / "..", media_root=media)


def test_a_symbolic_link_out_of_the_root_is_refused(media: Path, tmp_path: Path) -> None:
    """A link inside the root whose target is outside: refused, file or directory."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.mp4").write_bytes(b"s")
    (media / "escape").symlink_to(secret)
    (media / "escape.mp4").symlink_to(secret / "key.mp4")
    for path in (media / "escape" / "key.mp4", media / "escape.mp4", media / "escape" / "n.mp4"):
        with pytest.raises(InvalidOutputPathError, match="symbolic"):
            output_path_of(path, media_root=media)


def test_links_inside_the_root_keep_the_path_as_written(media: Path, tmp_path: Path) -> None:
    """A link within the root is stored as the link; a linked root works both ways."""
    (media / "latest.mp4").symlink_to(media / "projects" / "42" / "final.mp4")
    assert output_path_of(media / "latest.mp4", media_root=media) == "latest.mp4"
    alias = tmp_path / "media-alias"
    alias.symlink_to(media)
    target = media / "projects" / "42" / "final.mp4"
    assert output_path_of(target, media_root=alias) == "projects/42/final.mp4"
    assert output_path_of(alias / "projects" / "42" / "final.mp4", media_root=media) == (
        "projects/42/final.mp4"
    )


def test_dot_dot_after_a_link_names_the_file_it_really_is(media: Path) -> None:
    """'link/../x' is where the link's parent is on disk, not where the text suggests."""
    deep = media / "a" / "b"
    deep.mkdir(parents=True)
    (media / "shortcut").symlink_to(deep)
    path = output_path_of(media / "shortcut" / ".." / "x.mp4", media_root=media)
    assert path == "a/x.mp4"  # lexically it would read "x.mp4": a different file
