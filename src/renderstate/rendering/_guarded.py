"""moviepy's own ffmpeg processes die with the render that started them.

moviepy 2.2.1 starts ffmpeg with ``sp.Popen`` (``import subprocess as sp``) in these
modules: its audio reader (``AudioFileClip``), its video reader and the file probe
(``VideoFileClip``, ``ffmpeg_parse_infos``), its video and audio writers
(``write_videofile``) and ``subprocess_call``. Importing this module gives each of them the
guarded ``subprocess`` of :func:`renderstate._children.guard_modules`: while a thread runs
:class:`~renderstate.rendering.moviepy.MoviePyRenderer` (decorated with
:func:`dying_with_this_thread`), the ffmpeg processes moviepy starts in it are sent SIGKILL
when that thread (or its process) dies. Outside a render, moviepy is unchanged.
"""

from __future__ import annotations

import moviepy.audio.io.ffmpeg_audiowriter
import moviepy.audio.io.readers
import moviepy.tools
import moviepy.video.io.ffmpeg_reader
import moviepy.video.io.ffmpeg_writer

from renderstate._children import dying_with_this_thread, guard_modules

__all__ = ["dying_with_this_thread"]

guard_modules(
    moviepy.audio.io.readers,
    moviepy.audio.io.ffmpeg_audiowriter,
    moviepy.video.io.ffmpeg_reader,
    moviepy.video.io.ffmpeg_writer,
    moviepy.tools,
)
