"""Several processes open the command line's store on one new database at once (a worker
and a render started together): every one opens it, none fails on a table another created."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from renderstate.cli._store import Store


def _open(url: str, start: object, results: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        Store(url).close()
        results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:  # reported to the test
        results.put(repr(exc))  # type: ignore[attr-defined]


def test_processes_opening_one_new_sqlite_file_at_once_all_open_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    for round_ in range(5):
        url = f"sqlite:///{tmp_path / f'shared-{round_}.sqlite3'}"
        start, results = context.Event(), context.Queue()
        children = [context.Process(target=_open, args=(url, start, results)) for _ in range(6)]
        for child in children:
            child.start()
        start.set()
        outcomes = [results.get(timeout=60) for _ in children]
        for child in children:
            child.join(timeout=30)
        assert outcomes == ["ok"] * len(children), outcomes
