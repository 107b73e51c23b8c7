"""The moviepy renderer: a declarative timeline (or your own clip) to a browser-ready MP4.

``MoviePyRenderer()`` is a :class:`renderstate.typing.Renderer`. It reads the project's
``timeline`` attribute by default, or a TOML/JSON file, or a fixed timeline, or calls a
function that builds any moviepy clip. The output is H.264 ``yuv420p`` with AAC audio and the
``moov`` atom first (``+faststart``), which every browser plays while still downloading.

Needs the ``render`` extra: ``pip install 'renderstate[render]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

try:
    import proglog
    from moviepy.config import FFMPEG_BINARY
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    _msg = (
        "renderstate.rendering.moviepy needs moviepy, numpy, Pillow and proglog: "
        "pip install 'renderstate[render]'"
    )
    raise ImportError(_msg) from exc

from renderstate.rendering._clips import close_clip, user_clip
from renderstate.rendering._encode import encode_timeline
from renderstate.rendering._fonts import verify_text
from renderstate.rendering._frames import verify_images
from renderstate.rendering._guarded import dying_with_this_thread
from renderstate.rendering._inputs import Inputs
from renderstate.rendering._media import check_video
from renderstate.rendering._scratch import Scratch
from renderstate.rendering._soundtrack import check_audio_size, soundtrack_clip, write_wav
from renderstate.rendering._stored import stored_timeline
from renderstate.rendering.timeline import (
    DEFAULT_LIMITS,
    Limits,
    Timeline,
    check_frames,
    check_output_format,
    frame_count,
    load_timeline,
    parse_timeline,
)
from renderstate.typing import ProgressSink

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_SIZE",
    "PHASES",
    "PRESETS",
    "MoviePyRenderer",
    "ProglogProgress",
    "no_progress",
]

_log = logging.getLogger(__name__)

DEFAULT_SIZE = (1280, 720)
"""The frame size when neither the renderer, the timeline nor the project gives one."""
DEFAULT_FPS = 30.0
"""The frame rate when neither the renderer, the timeline nor the project gives one."""

PHASES = {"chunk": "writing audio", "frame_index": "rendering"}
"""moviepy's proglog bar names and the progress phases they are reported as."""

PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
"""The x264 presets, fastest (largest files) first."""


def no_progress(phase: str, done: int, total: int) -> None:
    """A :class:`~renderstate.typing.ProgressSink` that ignores every report."""


class ProglogProgress(proglog.ProgressBarLogger):  # type: ignore[misc]
    """Forwards moviepy's own progress bars to a :class:`~renderstate.typing.ProgressSink`.

    moviepy drives a ``chunk`` bar while audio is computed and a ``frame_index`` bar while
    frames are encoded; each index update becomes ``progress(phase, done, total)``, counts
    only going up, the last one ``done == total``. An exception raised by the sink aborts
    the render (that is how a caller cancels).
    """

    def __init__(self, sink: ProgressSink) -> None:
        # logged_bars=False: proglog would otherwise keep a log line per frame in memory.
        super().__init__(min_time_interval=0, logged_bars=False)
        self._sink = sink

    def bars_callback(self, bar: str, attr: str, value: Any, old_value: Any = None) -> None:
        """Report a bar's new position (proglog calls this on every bar update)."""
        phase = PHASES.get(bar)
        if phase is None or attr != "index" or value < 0:
            return
        total = self.bars[bar]["total"]
        if total:
            self._sink(phase, int(value), int(total))


class MoviePyRenderer:
    """Render a project's timeline into an MP4 with moviepy.

    Where the picture comes from (give at most one; the default is the project's
    ``timeline`` attribute):

    Args:
        timeline: A fixed timeline, as a :class:`~renderstate.rendering.timeline.Timeline`
            or a mapping in the timeline format.
        timeline_file: A ``.toml`` or ``.json`` timeline file.
        clip_factory: ``clip_factory(project) -> moviepy clip`` for anything the timeline
            format cannot say. The renderer writes it (audio included) and closes it.
        timeline_attribute: The project attribute holding the timeline mapping (or its JSON
            text) when no other source is given.
        base_dir: Where relative image and audio paths of a mapping timeline are resolved
            (default: the current working directory; a file timeline uses its directory).
            A mapping timeline (a project's stored one, say) may only name files inside
            it: absolute paths, ``..`` and symlinks leading out are a TimelineError. On a
            server, set it to the directory the users' media is uploaded to.
        size: ``(width, height)``, overriding the timeline's and the project's.
        fps: Frames per second, overriding the timeline's and the project's.
        width_attribute: The project attribute read for the width when neither the
            renderer nor the timeline sets the size.
        height_attribute: The same for the height.
        fps_attribute: The same for the frame rate.
        preset: The x264 preset: ``ultrafast`` ... ``veryslow``. ``ultrafast`` drops to the
            Constrained Baseline profile and makes much larger files.
        crf: x264 constant rate factor, 0-51; lower is better quality and larger.
        repeat_stills: Encode a long still stretch of a timeline scene (a colour or a picture)
            once, as a short piece whose frames are repeated by stream copy: several
            times faster, the same frames at the same quality, and about the size of
            encoding every frame (a keyframe about every 250 frames, as x264 places
            them). ``False`` encodes every frame in one pass.
        threads: ffmpeg encoder threads (``None``: ffmpeg decides). Frame generation itself
            is single-threaded Python. With ``1``, a render also encodes a timeline's
            soundtrack after its video rather than beside it, so it keeps about one core
            busy: the setting for one render per core, such as Celery workers started with
            ``--concurrency`` equal to the cores (a render is then a little slower alone,
            but renders side by side do not compete for the cores).
        audio_fps: The audio sample rate.
        font: A TrueType/OpenType file for the titles of timelines that name no ``font``
            of their own (default: the bundled DejaVu Sans, which covers Latin, Greek and
            Cyrillic). Text the font has no glyph for is a TimelineError.
        limits: The longest video, the frame rates and the soundtrack scratch size
            accepted (:data:`~renderstate.rendering.timeline.DEFAULT_LIMITS` by default);
            anything beyond them is a TimelineError before any work starts.
    """

    def __init__(
        self,
        *,
        timeline: Timeline | Mapping[str, Any] | None = None,
        timeline_file: Path | str | None = None,
        clip_factory: Callable[[Any], Any] | None = None,
        timeline_attribute: str = "timeline",
        base_dir: Path | str | None = None,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        width_attribute: str = "resolution_width",
        height_attribute: str = "resolution_height",
        fps_attribute: str = "framerate",
        preset: str = "medium",
        crf: int = 23,
        repeat_stills: bool = True,
        threads: int | None = None,
        audio_fps: int = 44100,
        font: Path | str | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        sources = [s for s in (timeline, timeline_file, clip_factory) if s is not None]
        if len(sources) > 1:
            msg = "Give at most one of timeline, timeline_file and clip_factory."
            raise ValueError(msg)
        if preset not in PRESETS:
            msg = f"preset must be one of {', '.join(PRESETS)}; got {preset!r}."
            raise ValueError(msg)
        if not 0 <= crf <= 51:
            msg = f"crf must be an integer from 0 to 51, got {crf!r}."
            raise ValueError(msg)
        if threads is not None and (type(threads) is not int or threads < 1):  # bool too
            msg = (
                f"threads must be a positive integer (1 for one core per render) or None to "
                f"let ffmpeg decide, got {threads!r}."
            )
            raise ValueError(msg)
        self.limits = limits
        """The bounds every render is checked against before it starts."""
        self.font = None if font is None else Path(font)
        """The default font of the titles, or ``None`` for the bundled DejaVu Sans."""
        self._base_dir = None if base_dir is None else Path(base_dir)
        self._timeline: Timeline | None = None
        if isinstance(timeline, Timeline):
            self._timeline = timeline
        elif timeline is not None:
            self._timeline = parse_timeline(timeline, base_dir=self._base_dir, limits=limits)
        self._timeline_file = None if timeline_file is None else Path(timeline_file)
        self._clip_factory = clip_factory
        self.timeline_attribute = timeline_attribute
        """The project attribute read when no other source is configured."""
        if size is not None:
            check_output_format(size[0], size[1], fps or DEFAULT_FPS, limits=limits)
        if fps is not None:
            check_output_format(2, 2, fps, limits=limits)
        self.size = size
        """The ``(width, height)`` override, or ``None``."""
        self.fps = fps
        """The frame rate override, or ``None``."""
        self.width_attribute = width_attribute
        self.height_attribute = height_attribute
        self.fps_attribute = fps_attribute
        self.preset = preset
        """The x264 preset."""
        self.crf = crf
        """The x264 constant rate factor."""
        self.repeat_stills = repeat_stills
        """Whether long still stretches are encoded once and repeated."""
        self.threads = threads
        """ffmpeg's encoder threads, or ``None``."""
        self.audio_fps = audio_fps
        """The audio sample rate."""

    # ------------------------------------------------------------ public

    def timeline_for(self, project: Any) -> Timeline:
        """Return the validated timeline ``project`` would be rendered from.

        Cheap (no moviepy work): a web endpoint can call it before queueing a render.

        Raises:
            TimelineError: the timeline is missing or invalid.
            TypeError: the renderer was built with ``clip_factory``, which has no timeline.
        """
        if self._clip_factory is not None:
            msg = "A renderer with a clip_factory has no timeline to check."
            raise TypeError(msg)
        if self._timeline is not None:
            return self._timeline
        if self._timeline_file is not None:
            return load_timeline(self._timeline_file, limits=self.limits)
        return stored_timeline(
            project, self.timeline_attribute, base_dir=self._base_dir, limits=self.limits
        )

    def output_format(
        self, project: Any, timeline: Timeline | None = None
    ) -> tuple[int, int, float]:
        """Return the ``(width, height, fps)`` the render will use.

        The renderer's ``size``/``fps`` win, then the timeline's, then the project's
        attributes, then :data:`DEFAULT_SIZE` and :data:`DEFAULT_FPS`.

        Raises:
            TimelineError: an odd or out-of-range side, or a rate outside the limits.
        """
        width: object
        height: object
        if self.size is not None:
            width, height = self.size
        elif timeline is not None and timeline.width is not None:
            width, height = timeline.width, timeline.height
        else:
            width = getattr(project, self.width_attribute, None) or DEFAULT_SIZE[0]
            height = getattr(project, self.height_attribute, None) or DEFAULT_SIZE[1]
        fps: object = self.fps
        if fps is None and timeline is not None:
            fps = timeline.fps
        if fps is None:
            fps = getattr(project, self.fps_attribute, None) or DEFAULT_FPS
        return check_output_format(width, height, fps, limits=self.limits)

    @dying_with_this_thread  # moviepy's ffmpeg processes die with the render
    def __call__(self, project: Any, target: Path, progress: ProgressSink = no_progress) -> None:
        """Render ``project`` into ``target`` (a path ending in ``.mp4``).

        The timeline is validated, its images, fonts and soundtrack checked before ffmpeg
        starts, so a bad timeline raises :class:`~renderstate.TimelineError` and creates
        no file. The written video is checked too (a video stream, one frame per ``1/fps``
        of the timeline, give or take one): if not, :class:`~renderstate.RenderOutputError`.
        On any failure the partial ``target`` is removed; no ffmpeg process and
        no scratch file outlive the call.

        The timeline's files are each opened once, and every check and decoder reads the
        open file, never its name again. Scratch files go into a private directory the
        render makes beside ``target`` (the Rendering page says which), never the system
        temporary directory. Any POSIX file name works: 255 bytes long, with a newline,
        or not UTF-8.
        """
        target = Path(target)
        if target.suffix.lower() != ".mp4":
            msg = f"The target must end in .mp4, got {str(target)!r}."
            raise ValueError(msg)
        owned: list[Any] = []
        scratch: Scratch | None = None
        inputs: Inputs | None = None
        try:
            # Beside the target (the Renderer contract): a SIGKILL cannot run the finally
            # below, and recovery finds them there.
            scratch = Scratch(target)
            inputs = Inputs(scratch)
            clip, audio, fps = self._build(project, owned, inputs)
            bars = ProglogProgress(progress)
            audio_path: str | None = None
            if audio is not None:
                check_audio_size(audio, self.audio_fps, self.limits)
                with scratch.open("soundtrack.wav") as wav:
                    write_wav(audio, wav, self.audio_fps, bars)
                audio_path = str(scratch.directory / scratch.name("soundtrack.wav"))
            if isinstance(clip, _TimelineClip):
                # A timeline's still stretches are piped once each (see _encode).
                encode_timeline(
                    ffmpeg=FFMPEG_BINARY,
                    timeline=clip.timeline,
                    size=clip.size,
                    fps=fps,
                    target=target,
                    audio=audio_path,
                    preset=self.preset,
                    crf=self.crf,
                    threads=self.threads,
                    progress=progress,
                    repeat=self.repeat_stills,
                    scratch=scratch,
                )
                duration = clip.timeline.duration
            else:
                clip.write_videofile(
                    str(target),
                    fps=fps,
                    codec="libx264",
                    audio=audio_path or False,
                    audio_codec="aac",
                    preset=self.preset,
                    threads=self.threads,
                    # moviepy 2.2.1 appends `-pix_fmt yuva420p` after these and ignores
                    # pixel_format; fed rgb24 (no mask), libx264 falls back to yuv420p,
                    # which the tests verify on the output.
                    ffmpeg_params=["-crf", str(self.crf), "-movflags", "+faststart"],
                    # Unused (the audio is always a file already), but should moviepy ever
                    # write its own, it too is the render's scratch file.
                    temp_audiofile=str(scratch.path("moviepy-audio.m4a")),
                    logger=bars,
                )
                duration = float(clip.duration)
            # Never hand the runner something it would publish over the last good video
            # without a picture, or of the wrong length.
            check_video(target, duration=duration, fps=fps)
        except BaseException:
            # A failed write leaves ffmpeg's partial output; never let removing it hide
            # the error that caused it.
            with contextlib.suppress(OSError):
                target.unlink(missing_ok=True)
            raise
        finally:
            for owned_clip in reversed(owned):
                try:
                    close_clip(owned_clip)
                except Exception:  # noqa: BLE001 - any close failure: log it, close the rest
                    # Keep closing the others, and keep the render's own outcome.
                    _log.exception("could not close %r after rendering", owned_clip)
            if inputs is not None:
                inputs.close()
            if scratch is not None:
                scratch.close()

    # ------------------------------------------------------------ building

    def _build(self, project: Any, owned: list[Any], inputs: Inputs) -> tuple[Any, Any, float]:
        """Return ``(video clip without audio or mask, audio clip or None, fps)``.

        The timeline returned names the files ``inputs`` opened, not the timeline's paths.
        """
        if self._clip_factory is not None:
            return user_clip(
                self._clip_factory,
                project,
                owned,
                fps=self.fps,
                fallback_fps=getattr(project, self.fps_attribute, None) or DEFAULT_FPS,
                limits=self.limits,
            )
        timeline = self.timeline_for(project)
        width, height, fps = self.output_format(project, timeline)
        check_frames(timeline.duration, fps)
        # Opened once, before anything reads them: the checks below and the render read
        # these very files.
        timeline = inputs.timeline(timeline)
        if self.font is not None:
            font = inputs.open(self.font, base=None, field="font", scene=None)
            timeline = dataclasses.replace(
                timeline,
                scenes=tuple(
                    scene if scene.font else dataclasses.replace(scene, font=font)
                    for scene in timeline.scenes
                ),
            )
        verify_images(timeline)
        verify_text(timeline)
        video = _TimelineClip(timeline, (width, height))
        # The video holds whole frames: the soundtrack is cut where its last frame ends.
        seconds = frame_count(timeline.duration, fps) / fps
        audio = soundtrack_clip(timeline, seconds, self.audio_fps, owned)
        return video, audio, fps


class _TimelineClip:
    """A timeline about to be encoded by :func:`encode_timeline` (not a moviepy clip)."""

    def __init__(self, timeline: Timeline, size: tuple[int, int]) -> None:
        self.timeline = timeline
        self.size = size
