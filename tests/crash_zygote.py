"""Starts the crash tests' recovery children from one prepared process, by fork.

Usage (by :class:`Zygote`, never by hand):
    python crash_zygote.py

It imports what the child scripts import (SQLAlchemy, renderstate) once, then reads one
request a line from stdin: ``{"argv": [script, arg...], "stdout": path, "stderr": path}``.
For each, it forks: the child, a fresh process that has done nothing but import, writes its
output to the two files and runs ``script`` as ``__main__`` with ``argv``, exactly as
``python script arg...`` would; the parent waits for it and answers ``{"returncode": n}``.
A sweep recovers after every crash point: this spares each recovery the second or so that
starting Python and importing takes. The killed runs themselves start from nothing, under
strace, as ever.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback

import crash_child  # noqa: F401 - imported for its imports, which every fork then shares
import directory_child  # noqa: F401


def run(argv: list[str], stdout: str, stderr: str) -> int:
    """Fork, run ``argv`` in the child with its output in the two files; its exit status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            for fd, path in ((1, stdout), (2, stderr)):
                target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(target, fd)
                os.close(target)
            sys.argv = list(argv)
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # reported as python would report it, then exit 1
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        returncode = run(request["argv"], request["stdout"], request["stderr"])
        print(json.dumps({"returncode": returncode}), flush=True)


if __name__ == "__main__":
    main()
