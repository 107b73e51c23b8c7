"""Child process of the file-publishing tests: writes inside publishing() until it is killed.

Usage: python publish_child.py FINAL

Writes part of a new version of FINAL (and a scratch file beside it) inside
``renderstate.files.publishing``, prints ``writing <temporary path>``, and waits to be
SIGKILLed mid-write, as a render process killed by the OOM killer or a deploy would be.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from renderstate.files import publishing


def main() -> None:
    final = Path(sys.argv[1])
    with publishing(final) as target, target.open("wb") as out:
        out.write(b"\0" * 8192)  # the "8 KB fragment" of a killed re-render
        out.flush()
        target.with_name(target.name + ".soundtrack.wav").write_bytes(b"scratch")
        print("writing", target, flush=True)
        threading.Event().wait()  # until the parent kills us


if __name__ == "__main__":
    main()
