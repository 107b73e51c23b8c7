"""Uses renderstate.files as a user would; only type-checked (mypy), never run."""

from __future__ import annotations

from pathlib import Path

from renderstate.files import publish, publishing, remove_temporary_files, scratch_path


def render_into(target: Path) -> None:
    sound: Path = scratch_path(target, "soundtrack.wav")
    sound.write_bytes(b"sound")
    target.write_bytes(b"video")
    sound.unlink()


def export(final: str) -> Path:
    with publishing(final, project_key=42) as target:
        render_into(target)
    removed: list[Path] = remove_temporary_files(Path(final))
    del removed
    return publish(Path("/tmp/out.mp4"), final)
