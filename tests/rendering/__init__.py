"""Renderer tests: the timeline format (no moviepy) and real, small moviepy renders."""
