"""The soundtrack: the timeline's audio as a moviepy clip, its size checked, written as WAV.

A timeline's soundtrack (a file cut where the last whole frame ends, or a generated tone)
is computed into a 16-bit PCM scratch file, in the render's private scratch directory,
before the video is encoded; the encoder turns that file into AAC.
"""

from __future__ import annotations

import math
import wave
from typing import Any, BinaryIO

import numpy as np
from moviepy import AudioClip, AudioFileClip

from renderstate.rendering._frames import tone_function
from renderstate.rendering._media import check_audio_file
from renderstate.rendering.timeline import Limits, Timeline, TimelineError

__all__ = ["AUDIO_CHUNK", "check_audio_size", "soundtrack_clip", "write_wav"]

AUDIO_CHUNK = 8192
"""Audio samples computed per step; one ``writing audio`` progress unit."""


def soundtrack_clip(
    timeline: Timeline, seconds: float, audio_fps: int, owned: list[Any]
) -> Any | None:
    """Return ``timeline``'s soundtrack as a moviepy audio clip of at most ``seconds``.

    Every clip constructed is appended to ``owned`` (the caller closes them). ``None`` when
    the timeline has no soundtrack.

    Raises:
        TimelineError: the soundtrack file is not audio ffmpeg can decode.
    """
    audio = None
    soundtrack = timeline.soundtrack
    if soundtrack is not None and soundtrack.file is not None:
        check_audio_file(soundtrack.file)
        try:
            source = AudioFileClip(str(soundtrack.file))
        # moviepy raises KeyError ('audio_bitrate'), OSError, IndexError, ... for a file
        # ffmpeg opened but cannot decode: any of them means the same to the user.
        except Exception as exc:  # noqa: BLE001
            raise TimelineError(
                field="soundtrack.file",
                problem=(
                    f"{soundtrack.file.name!r} cannot be decoded as audio "
                    f"({type(exc).__name__}: {exc}); use an undamaged audio file"
                ),
            ) from None
        owned.append(source)
        audio = source
        if source.duration > seconds:
            audio = source.subclipped(0, seconds)
        if soundtrack.volume != 1.0:
            audio = audio.with_volume_scaled(soundtrack.volume)
    elif soundtrack is not None and soundtrack.tone is not None:
        audio = AudioClip(
            tone_function(soundtrack.tone, soundtrack.volume),
            duration=seconds,
            fps=audio_fps,
        )
        owned.append(audio)
    return audio


def check_audio_size(audio: Any, audio_fps: int, limits: Limits) -> None:
    """Refuse a soundtrack whose scratch WAV would exceed ``limits.max_audio_bytes``."""
    size = math.ceil(float(audio.duration) * audio_fps) * int(audio.nchannels) * 2
    if size > limits.max_audio_bytes:
        raise TimelineError(
            field="soundtrack",
            problem=(
                f"its scratch file would take {size:,} bytes ({audio.duration:g} s at "
                f"{audio_fps} Hz, {audio.nchannels} channels), more than the "
                f"{limits.max_audio_bytes:,} byte limit; shorten the video, lower "
                f"audio_fps, or pass MoviePyRenderer(limits=Limits(max_audio_bytes=...))"
            ),
        )


def write_wav(audio: Any, out: BinaryIO, fps: int, logger: Any) -> None:
    """Write ``audio`` as 16-bit PCM into ``out``, reporting moviepy's ``chunk`` bar to ``logger``.

    Done here rather than by ``write_videofile`` so the file is the render's own scratch
    file (created by :class:`~renderstate.rendering._scratch.Scratch`, never opened by
    name) and no ffmpeg process is involved: moviepy's audio writer is not closed when a
    chunk raises, which would leave ffmpeg running.
    """
    channels = int(audio.nchannels)
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(fps)
        for chunk in audio.iter_chunks(
            chunksize=AUDIO_CHUNK, quantize=True, nbytes=2, fps=fps, logger=logger
        ):
            samples = np.asarray(chunk, dtype=np.int16).reshape(-1, channels)
            wav.writeframes(samples.tobytes())
