"""A tiny Django app holding the reference Project model, unmodified, for the adapter tests."""
