"""Rendering: the declarative timeline and the moviepy renderer that draws it.

- :mod:`renderstate.rendering.timeline`: the timeline format, parsed and validated without
  moviepy (cheap enough for a web process; validating uses pydantic), and its JSON Schema.
- :mod:`renderstate.rendering.moviepy`: :class:`~renderstate.rendering.moviepy.MoviePyRenderer`,
  the default renderer; needs ``pip install 'renderstate[render]'``.

This package is the only part of renderstate that imports moviepy, and importing it (or the
timeline module) does not.
"""
