"""``python -m renderstate``: the same command line as ``renderstate``."""

from __future__ import annotations

from renderstate.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
