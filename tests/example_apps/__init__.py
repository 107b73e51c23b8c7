"""The example apps of examples/, driven through their real servers (and a real browser)."""
