"""The app holding the reference Project model and the export endpoints."""
