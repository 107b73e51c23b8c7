"""The app's render function, unchanged by the swap.

It takes a project id, reports ``on_progress(current, total, description)``, writes the
video (by default over ``media/projects/<id>/final.mp4``, in place) with moviepy, and
returns a dict naming it. moviepy writes its soundtrack first, as a scratch file beside
the video (``...TEMP_MPY_wvf_snd.mp4``).
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import proglog
from django.conf import settings

from .models import Project

SIZE = (64, 36)
FPS = 10


class _FrameProgress(proglog.ProgressBarLogger):  # type: ignore[misc]
    def __init__(self, on_progress: Callable[[int, int, str], None]) -> None:
        super().__init__(min_time_interval=0.0)
        self.on_progress = on_progress

    def bars_callback(self, bar: str, attr: str, value: int, old_value: int | None = None) -> None:
        if bar == "frame_index" and attr == "index":
            self.on_progress(value, self.bars[bar]["total"], "Rendering frames")


def render_project(
    project_id: int,
    on_progress: Callable[[int, int, str], None] | None = None,
    output_path: str | Path | None = None,
) -> dict[str, object]:
    """Render the project's scenes into an MP4; return ``{"video_path": ..., "duration": ...}``."""
    from moviepy import AudioClip, ColorClip, concatenate_videoclips  # noqa: PLC0415 - heavy

    project = Project.objects.get(pk=project_id)
    if not project.scenes:
        msg = f"project {project_id} has no scenes to render"
        raise ValueError(msg)
    if output_path is None:
        output_path = Path(settings.MEDIA_ROOT) / "projects" / str(project_id) / "final.mp4"
    output = Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    scenes = [
        ColorClip(size=SIZE, color=tuple(s["color"]), duration=float(s["seconds"]))
        for s in project.scenes
    ]
    video = concatenate_videoclips(scenes)
    tone = AudioClip(
        lambda t: np.column_stack([np.sin(2 * np.pi * 440 * np.asarray(t))] * 2),
        duration=video.duration,
        fps=22050,
    )
    video = video.with_audio(tone)
    report = on_progress or (lambda current, total, description: None)
    video.write_videofile(
        str(output),
        fps=FPS,
        codec="libx264",
        audio_codec="aac",
        preset="ultrafast",
        temp_audiofile_path=str(output.parent),  # the soundtrack's scratch file, beside it
        logger=_FrameProgress(report),
    )
    duration = video.duration
    video.close()
    for scene in scenes:
        scene.close()
    return {"video_path": str(output), "duration": duration}
