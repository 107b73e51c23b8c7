"""One HTTP contract, run against every example app through its real server.

Create -> 201 DRAFT; export -> 202; a second export while rendering -> 409 problem+json;
polling reaches COMPLETED and the video is served at /media/<output_path>; a re-render keeps
the URL and never shows the previous attempt's progress; a failed render, then a retry; twenty
concurrent exports -> one 202 and nineteen 409s; 404 for an unknown id; 4xx for bad bodies.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .servers import AppServer, Response

PROBLEM = "application/problem+json"
STATUS_KEYS = {"id", "status", "output_path", "progress", "error"}
PROGRESS_KEYS = {
    "phase",
    "fraction",
    "done",
    "total",
    "eta_seconds",
    "live",
    "age_seconds",
    "label",
}

TINY = {"width": 160, "height": 90, "fps": 12, "scenes": [{"duration": 1, "title": "tiny"}]}
"""A render of a few dozen milliseconds."""
SLOW = {
    "width": 640,
    "height": 360,
    "fps": 24,
    "scenes": [{"duration": 2, "title": "A"}, {"duration": 2, "title": "B", "crossfade": 1}],
    "soundtrack": {"tone": 330},
}
"""A render of a few tenths of a second: long enough to be seen running."""
BUSY = {
    "width": 1280,
    "height": 720,
    "fps": 30,
    "scenes": [{"duration": 3, "title": "A"}, {"duration": 3, "title": "B", "crossfade": 2}],
}
"""A render of a second or more: twenty requests all arrive while it runs."""


def create(server: AppServer, timeline: dict[str, Any] | None = None, title: str = "t") -> str:
    body: dict[str, Any] = {"title": title}
    if timeline is not None:
        body["timeline"] = timeline
    response = server.post("/projects", body)
    assert response.status == 201, response.body
    project_id: str = response.json()["id"]
    return project_id


def assert_status_body(response: Response, status: str) -> dict[str, Any]:
    assert response.content_type == "application/json", response.headers
    body: dict[str, Any] = response.json()
    assert set(body) == STATUS_KEYS, body
    assert body["status"] == status, body
    if body["progress"] is not None:
        assert set(body["progress"]) == PROGRESS_KEYS
        assert 0.0 <= body["progress"]["fraction"] <= 1.0
    return body


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status == status, (response.status, response.body)
    assert response.content_type == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def poll_until_done(
    server: AppServer, project_id: str, timeout: float = 90.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll the status until it leaves PROCESSING; return the last body and every one seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = server.get(f"/projects/{project_id}").json()
        seen.append(body)
        if body["status"] != "PROCESSING":
            return body, seen
        time.sleep(0.02)
    pytest.fail(f"project {project_id} still PROCESSING after {timeout} s:\n{server.logs()}")


def assert_video_served(server: AppServer, output_path: str) -> Response:
    response = server.get(f"/media/{output_path}")
    assert response.status == 200
    assert response.content_type == "video/mp4"
    # An ISO base media file: the 'ftyp' box comes first.
    assert response.body[4:8] == b"ftyp"
    assert len(response.body) == (server.media_root / output_path).stat().st_size
    return response


def test_create_answers_201_draft(app_server: AppServer) -> None:
    """POST /projects stores a DRAFT project and returns it, timeline included."""
    response = app_server.post("/projects", {"title": "Our trip", "timeline": TINY})
    assert response.status == 201
    body = response.json()
    assert set(body) >= STATUS_KEYS
    assert body["status"] == "DRAFT"
    assert body["progress"] is None
    assert body["output_path"] is None
    assert body["title"] == "Our trip"
    assert body["timeline"] == TINY
    assert_status_body(app_server.get(f"/projects/{body['id']}"), "DRAFT")


def test_create_without_a_timeline_gets_the_sample(app_server: AppServer) -> None:
    """A project created with a title only renders the library's sample timeline."""
    sample = json.loads(
        resources.files("renderstate.rendering").joinpath("sample_timeline.json").read_text()
    )
    response = app_server.post("/projects", {"title": "Sample"})
    assert response.status == 201
    assert response.json()["timeline"] == sample


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        pytest.param("this is not JSON", 400, "body", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", 400, "body", id="not-utf8"),
        pytest.param("[1, 2]", 400, "body", id="not-an-object"),
        pytest.param({"timeline": TINY}, 422, "title", id="no-title"),
        pytest.param({"title": ""}, 422, "title", id="empty-title"),
        pytest.param({"title": 42}, 422, "title", id="title-not-a-string"),
        pytest.param({"title": "x" * 256}, 422, "title", id="title-too-long"),
        pytest.param({"title": "a\x00b"}, 422, "title", id="nul-in-title"),
        pytest.param('{"title": "a\\ud800b"}', 422, "title", id="lone-surrogate-in-title"),
        pytest.param(
            '{"title": "t", "timeline": ' + "[" * 100_000 + "]" * 100_000 + "}",
            400,
            "body",
            id="nested-too-deep",
        ),
        pytest.param(
            {"title": "t", "timeline": {"scenes": [{"duration": 1, "title": "a\x00b"}]}},
            422,
            "title",
            id="nul-in-a-scene-title",
        ),
        pytest.param(
            {"title": "t", "timeline": {"scenes": [{"duration": 1, "image": "a" * 5000}]}},
            422,
            "image",
            id="picture-name-too-long",
        ),
        pytest.param({"title": "t", "timeline": [1]}, 422, "timeline", id="timeline-not-a-map"),
        pytest.param(
            {"title": "t", "timeline": {"scenes": [{"duration": -1}]}},
            422,
            "duration",
            id="negative-duration",
        ),
        pytest.param(
            {"title": "t", "timeline": {"scenes": [{"duration": 1, "image": "missing.png"}]}},
            422,
            "image",
            id="missing-picture",
        ),
        pytest.param(
            {"title": "t", "timeline": {"scenes": [{"duration": 1, "image": "/etc/passwd"}]}},
            422,
            "image",
            id="file-outside-uploads",
        ),
    ],
)
def test_bad_create_bodies_are_4xx_problems_naming_the_field(
    app_server: AppServer, body: Any, status: int, field: str
) -> None:
    """A body the app cannot use is refused with a problem+json that names the field (NUL,
    a lone surrogate, JSON nested too deep, a file name too long for the file system: each
    was a 500 on some app and database)."""
    problem = assert_problem(app_server.post("/projects", body), status)
    assert problem["field"] == field


@pytest.mark.parametrize(
    ("image", "shown"),
    [
        pytest.param("../secret.png", "'../secret.png' contains a '..' segment", id="outside"),
        pytest.param("/etc/passwd", "'…/passwd' is an absolute path", id="absolute"),
        pytest.param("missing.png", "'missing.png' does not exist", id="missing"),
    ],
)
def test_a_bad_timeline_is_answered_for_the_client_and_logged_for_the_developer(
    app_server: AppServer, image: str, shown: str
) -> None:
    """The 422 names the client's value only (no server path, no advice about the code);
    the server's log has the full message under the request id the answer carries."""
    request_id = f"req-{uuid.uuid4().hex}"
    timeline = {"scenes": [{"duration": 1, "image": image}]}
    response = app_server.request(
        "POST",
        "/projects",
        {"title": "t", "timeline": timeline},
        headers={"X-Request-ID": request_id},
    )
    problem = assert_problem(response, 422)
    assert shown in problem["detail"], problem
    assert (problem["request_id"], response.headers["x-request-id"]) == (request_id, request_id)
    text = json.dumps(problem, ensure_ascii=False)
    for secret in (
        str(app_server.media_root),
        "allow_outside_base_dir",
        "load_timeline",
        "base_dir",
    ):
        assert secret not in text, problem
    deadline = time.monotonic() + 10
    while request_id not in app_server.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    [line] = [line for line in app_server.logs().splitlines() if request_id in line]
    assert "TimelineError" in line, line
    if image != "missing.png":
        assert "allow_outside_base_dir=True" in line, line
    else:
        assert str(app_server.media_root) in line, line


def test_unknown_project_is_404_problem(app_server: AppServer) -> None:
    """Reading or exporting a project that does not exist answers 404 problem+json."""
    for method, path in [
        ("GET", "/projects/6f1c1b7e-4a43-4c3e-9a53-2b0a4f0e9d11"),
        ("POST", "/projects/6f1c1b7e-4a43-4c3e-9a53-2b0a4f0e9d11/render"),
        ("GET", "/projects/not-a-uuid"),
        ("POST", "/projects/not-a-uuid/render"),
    ]:
        problem = assert_problem(app_server.request(method, path), 404)
        assert problem["error"] == "ProjectNotFoundError"


def test_export_conflict_completion_and_video(app_server: AppServer) -> None:
    """Export -> 202; a second export while rendering -> 409; then COMPLETED and a playable URL."""
    project_id = create(app_server, SLOW)
    accepted = app_server.post(f"/projects/{project_id}/render")
    assert accepted.status == 202, accepted.body
    body = assert_status_body(accepted, "PROCESSING")
    assert body["id"] == project_id
    assert body["progress"]["phase"] in {"queued", "rendering", "writing audio"}

    conflict = assert_problem(app_server.post(f"/projects/{project_id}/render"), 409)
    assert conflict["error"] == "RenderConflictError"
    assert conflict["current_status"] == "PROCESSING"
    assert project_id in conflict["detail"]

    final, _ = poll_until_done(app_server, project_id)
    assert final["status"] == "COMPLETED", (final, app_server.logs())
    assert final["output_path"] == f"projects/{project_id}/final.mp4"
    assert final["progress"] is None
    assert final["error"] is None
    assert_video_served(app_server, final["output_path"])


def test_rerender_keeps_the_url_and_starts_its_own_progress(app_server: AppServer) -> None:
    """A re-render replaces final.mp4 at the same URL; no poll shows the last attempt's figures."""
    project_id = create(app_server, SLOW)
    assert app_server.post(f"/projects/{project_id}/render").status == 202
    first, _ = poll_until_done(app_server, project_id)
    assert first["status"] == "COMPLETED"
    video = app_server.media_root / first["output_path"]
    first_inode = video.stat().st_ino

    accepted = app_server.post(f"/projects/{project_id}/render")
    assert accepted.status == 202
    body = assert_status_body(accepted, "PROCESSING")
    # The previous attempt ended in phase "done" at 1.0: the new one starts from scratch.
    assert body["progress"]["phase"] in {"queued", "rendering", "writing audio"}
    assert body["progress"]["fraction"] < 1.0
    # While it renders, the last good video keeps its URL.
    assert body["output_path"] == first["output_path"]

    final, seen = poll_until_done(app_server, project_id)
    assert final["status"] == "COMPLETED"
    assert final["output_path"] == first["output_path"]
    running = [b["progress"] for b in seen if b["status"] == "PROCESSING"]
    assert running, "the re-render ended before the first poll"
    fractions = [p["fraction"] for p in running if p is not None]
    assert all(p is None or p["phase"] not in {"done", "failed"} for p in running), running
    assert fractions == sorted(fractions), "progress went backwards: an older attempt's figures"
    # The new file replaced the old one (a rename), at the same place.
    assert video.stat().st_ino != first_inode
    assert_video_served(app_server, final["output_path"])


def test_failed_render_then_retry(app_server: AppServer) -> None:
    """A render that fails ends FAILED with the reason; once the cause is fixed a retry completes.

    The documented way to make a render fail: a timeline whose picture (in the uploads
    directory) exists but is not a picture.
    """
    uploads: Path = app_server.media_root / "uploads"
    picture = uploads / f"upload-{time.monotonic_ns()}.png"
    picture.write_text("this upload was cut short")
    timeline = {**TINY, "scenes": [{"duration": 1, "image": picture.name}]}
    project_id = create(app_server, timeline)

    assert app_server.post(f"/projects/{project_id}/render").status == 202
    failed, _ = poll_until_done(app_server, project_id)
    assert failed["status"] == "FAILED", failed
    assert failed["output_path"] is None
    assert "not a readable picture" in failed["error"]
    assert picture.name in failed["error"], failed
    assert str(app_server.media_root) not in failed["error"], failed  # a path on the server
    assert failed["progress"] is None
    assert not list((app_server.media_root / "projects" / project_id).glob("*")), "leftovers"

    Image.new("RGB", (32, 18), (200, 40, 40)).save(picture, format="PNG")  # a good upload
    assert app_server.post(f"/projects/{project_id}/render").status == 202
    retried, _ = poll_until_done(app_server, project_id)
    assert retried["status"] == "COMPLETED", retried
    assert retried["error"] is None
    assert_video_served(app_server, retried["output_path"])


def test_twenty_concurrent_exports_start_one_render(app_server: AppServer) -> None:
    """Twenty clients click Export at once: exactly one 202, nineteen 409 problem+json."""
    project_id = create(app_server, BUSY)
    # Twenty reads at once first, so the server has the connections twenty requests need
    # (on MariaDB a cold Peewee connection takes ~0.1 s to open, one at a time): the clicks
    # then all arrive while the render runs, and a late one is not a legitimate re-render.
    with ThreadPoolExecutor(20) as pool:
        warm = list(pool.map(lambda _: app_server.get(f"/projects/{project_id}").status, range(20)))
    assert warm == [200] * 20, warm
    barrier = threading.Barrier(20)
    responses: list[Response] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def click() -> None:
        try:
            barrier.wait(10)
            response = app_server.post(f"/projects/{project_id}/render")
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                responses.append(response)

    threads = [threading.Thread(target=click) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    statuses = sorted(r.status for r in responses)
    assert statuses == [202] + [409] * 19, (statuses, app_server.logs())
    for response in responses:
        if response.status == 409:
            assert assert_problem(response, 409)["error"] == "RenderConflictError"
    final, _ = poll_until_done(app_server, project_id)
    assert final["status"] == "COMPLETED", final
    assert_video_served(app_server, final["output_path"])


def test_render_body_is_ignored_and_never_a_5xx(app_server: AppServer) -> None:
    """Whatever the client sends with an export, the answer is the contract's, never a 5xx."""
    project_id = create(app_server, TINY)
    response = app_server.post(f"/projects/{project_id}/render", "not JSON at all")
    assert response.status == 202
    poll_until_done(app_server, project_id)


def ranged(server: AppServer, path: str, byte_range: str) -> Response:
    """GET ``path`` with one ``Range`` header, as a video element seeking does."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Range": byte_range})
        raw = conn.getresponse()
        payload = raw.read()
        return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, payload)
    finally:
        conn.close()


def test_media_answers_range_requests(app_server: AppServer) -> None:
    """A video can seek: one byte range is a 206 with Content-Range; past the end is a 416."""
    data = bytes(range(256)) * 40  # 10240 bytes
    (app_server.media_root / "uploads" / "ranged.bin").write_bytes(data)
    path = "/media/uploads/ranged.bin"

    whole = app_server.get(path)
    assert whole.status == 200
    assert whole.body == data
    assert whole.headers.get("accept-ranges") == "bytes", whole.headers

    first = ranged(app_server, path, "bytes=0-99")
    assert first.status == 206, first.headers
    assert first.body == data[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{len(data)}"
    assert first.headers["content-length"] == "100"

    middle = ranged(app_server, path, "bytes=1000-")
    assert middle.status == 206
    assert middle.body == data[1000:]

    suffix = ranged(app_server, path, "bytes=-500")
    assert suffix.status == 206
    assert suffix.body == data[-500:]
    assert suffix.headers["content-range"] == f"bytes {len(data) - 500}-{len(data) - 1}/{len(data)}"

    beyond = ranged(app_server, path, f"bytes={len(data)}-")
    assert beyond.status == 416, beyond.headers
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"


def test_media_never_serves_hidden_files(app_server: AppServer) -> None:
    """A render's temporary files (``.renderstate-*``) and any dot file are 404, not served."""
    project = app_server.media_root / "projects" / "hidden-test"
    project.mkdir(parents=True, exist_ok=True)
    (project / ".renderstate-0123abcd.soundtrack.wav").write_bytes(b"RIFF" + bytes(64))
    (project / "visible.txt").write_text("shown")
    (app_server.media_root / "uploads" / ".env").write_text("SECRET=1")
    dot_dir = app_server.media_root / "uploads" / ".cache"
    dot_dir.mkdir(exist_ok=True)
    (dot_dir / "picture.png").write_bytes(b"not shown")

    assert app_server.get("/media/projects/hidden-test/visible.txt").status == 200
    for path in [
        "/media/projects/hidden-test/.renderstate-0123abcd.soundtrack.wav",
        "/media/uploads/.env",
        "/media/uploads/.cache/picture.png",
        "/media/uploads/%2Eenv",
    ]:
        response = app_server.get(path)
        assert response.status == 404, (path, response.status, response.body[:80])


MAX_BODY = 1024 * 1024
"""The examples' documented limit on a request body: 1 MiB."""


def raw_exchange(server: AppServer, head: bytes, body_chunks: list[bytes]) -> Response:
    """Send ``head`` and the chunks (without ending the body), then read the answer.

    The body is never finished: an app that reads it whole before answering never answers,
    and the read times out.
    """
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)

    def send() -> None:
        with contextlib.suppress(OSError):  # the server may close once it has answered
            sock.sendall(head)
            for chunk in body_chunks:
                sock.sendall(chunk)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        raw = http.client.HTTPResponse(sock)
        raw.begin()
        payload = raw.read()
        return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, payload)
    finally:
        sock.close()
        sender.join(10)


def test_an_oversized_body_is_413_before_it_is_read(app_server: AppServer) -> None:
    """A body declared larger than 1 MiB is refused with 413 problem+json, unread."""
    head = (
        "POST /projects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {400 * MAX_BODY}\r\n\r\n"
    ).encode()
    response = raw_exchange(app_server, head, [b'{"title": "' + b"x" * 1000])
    problem = assert_problem(response, 413)
    assert problem["field"] == "body"
    assert str(MAX_BODY) in problem["detail"] or "1 MiB" in problem["detail"]


def test_a_chunked_body_is_not_read_past_the_limit(app_server: AppServer) -> None:
    """A chunked body is read up to the limit at most, then refused; the rest is never read."""
    head = (
        b"POST /projects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"x" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (MAX_BODY // len(piece) + 4)
    response = raw_exchange(app_server, head, chunks)
    # Django's WSGI handler reads no body without a Content-Length: an empty body, a 400.
    expected = 400 if app_server.name == "django_app" else 413
    assert_problem(response, expected)


def test_a_body_under_the_limit_is_read(app_server: AppServer) -> None:
    """A JSON body just under the limit (a long timeline) is read and used."""
    timeline = {**TINY, "scenes": [{"duration": 1, "title": "t"}] * 20_000}
    body = json.dumps({"title": "long", "timeline": timeline})
    assert 0.5 * MAX_BODY < len(body) < MAX_BODY
    response = app_server.post("/projects", body)
    assert response.status in {201, 422}, response.body[:200]
