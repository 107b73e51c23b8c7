"""A story-to-video app that already exists: its own render function and task manager.

The shape renderstate meets in the wild (Django + DRF, a render function that picks its own
output file, a home-grown background task manager), adopted in four steps: guard, finish,
files, recovery. ``examples/adopting_drf.py`` runs it; ``docs/adopting.md`` walks through it.
"""
