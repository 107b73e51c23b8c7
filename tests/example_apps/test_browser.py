"""The FastAPI example's page in a real headless Chromium (Debian's ``chromium``, via Playwright).

Export a project and watch the bar fill from the server's Server-Sent Events (and, without
EventSource, from polling), see the finished video load and play, click twice and read the
409 message. A screenshot of the page is saved under ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .servers import AppServer, serve

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WATCHED = {
    "width": 1280,
    "height": 720,
    "fps": 30,
    "scenes": [
        {"duration": 2, "title": "Export", "subtitle": "watched in a browser"},
        {"duration": 2, "background": "#1f4e3d", "title": "Done", "crossfade": 1},
    ],
    "soundtrack": {"tone": 330, "volume": 0.5},
}
"""Three seconds of 720p with a crossfade: a render long enough to watch the bar move."""

# Records every value the card's progress bar shows, as the page sets them.
RECORD_BAR = """
(id) => {
  const bar = document.querySelector(`#project-${id} .bar`);
  window.seen = [];
  new MutationObserver(() => window.seen.push(Number(bar.getAttribute("aria-valuenow"))))
    .observe(bar, { attributes: true, attributeFilter: ["aria-valuenow"] });
}
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fastapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    workdir = tmp_path_factory.mktemp("browser")
    with serve("fastapi_app", f"sqlite:///{workdir / 'app.sqlite3'}", workdir) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def new_project(server: AppServer, title: str) -> str:
    response = server.post("/projects", {"title": title, "timeline": WATCHED})
    assert response.status == 201, response.body
    project_id: str = response.json()["id"]
    return project_id


def open_page(browser: Any, server: AppServer, *, event_source: bool = True) -> Any:
    page = browser.new_page(viewport={"width": 900, "height": 900})
    if not event_source:
        page.add_init_script("delete window.EventSource;")
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    return page


def watch_export(page: Any, project_id: str) -> list[int]:
    """Click Export on the project's card and return every value the bar showed until done."""
    card = page.locator(f"#project-{project_id}")
    page.evaluate(RECORD_BAR, project_id)
    card.locator("button.export").click()
    sync_api.expect(card.locator(".status")).to_have_text("COMPLETED", timeout=90_000)
    seen: list[int] = page.evaluate("window.seen")
    return seen


def assert_video_plays(page: Any, project_id: str) -> None:
    video = page.locator(f"#project-{project_id} video")
    sync_api.expect(video).to_be_visible()
    # HAVE_ENOUGH_DATA, playing, and time moving: the browser decoded the file it was served.
    page.wait_for_function(
        "(v) => v.readyState >= 3 && !v.paused && v.currentTime > 0", arg=video.element_handle()
    )
    first = video.evaluate("v => v.currentTime")
    page.wait_for_timeout(400)
    state = video.evaluate(
        "v => ({time: v.currentTime, duration: v.duration, error: v.error && v.error.message,"
        " width: v.videoWidth, height: v.videoHeight, src: v.currentSrc})"
    )
    assert state["error"] is None, state
    assert state["time"] > first, state
    assert (state["width"], state["height"]) == (1280, 720)
    assert state["duration"] == pytest.approx(3.0, abs=0.1)
    assert f"/media/projects/{project_id}/final.mp4" in state["src"]


def test_export_fills_the_bar_from_events_and_plays_the_video(
    browser: Any, fastapi_server: AppServer
) -> None:
    """Export: the bar climbs to 100 % from Server-Sent Events, then the video loads and plays."""
    project_id = new_project(fastapi_server, "Watched export")
    page = open_page(browser, fastapi_server)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    seen = watch_export(page, project_id)
    assert seen[-1] == 100, seen
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert any(0 < value < 100 for value in seen), f"no progress was shown on the way: {seen}"
    assert any(url.endswith(f"/projects/{project_id}/events") for url in requests)
    bar = page.locator(f"#project-{project_id} .bar")
    assert bar.get_attribute("aria-valuenow") == "100"
    assert_video_plays(page, project_id)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "fastapi-page.png"), full_page=True)
    page.close()


def test_clicking_export_twice_shows_the_conflict(browser: Any, fastapi_server: AppServer) -> None:
    """A second click while the render runs shows the server's 409 message on the card."""
    project_id = new_project(fastapi_server, "Clicked twice")
    page = open_page(browser, fastapi_server)
    card = page.locator(f"#project-{project_id}")
    button = card.locator("button.export")
    button.click()
    button.click()
    message = card.locator(".message")
    sync_api.expect(message).to_contain_text("is already PROCESSING", timeout=30_000)
    sync_api.expect(card.locator(".status")).to_have_text("COMPLETED", timeout=90_000)
    # Once the render has completed, the refusal is no longer news: the card drops it.
    sync_api.expect(message).to_have_text("")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "fastapi-conflict.png"), full_page=True)
    page.close()


def test_without_event_source_the_page_polls(browser: Any, fastapi_server: AppServer) -> None:
    """Where EventSource is missing, polling GET /projects/<id> drives the same bar and video."""
    project_id = new_project(fastapi_server, "Polled export")
    page = open_page(browser, fastapi_server, event_source=False)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    seen = watch_export(page, project_id)
    assert seen[-1] == 100, seen
    assert seen == sorted(seen), seen
    assert not any(url.endswith("/events") for url in requests), requests
    polls = [url for url in requests if url.endswith(f"/projects/{project_id}")]
    assert len(polls) >= 2, requests
    assert_video_plays(page, project_id)
    page.close()


def test_the_page_loads_without_a_failed_request(browser: Any, fastapi_server: AppServer) -> None:
    """No 404 in the console: the page asks for nothing the app does not serve. A browser
    asks for /favicon.ico unless the page names its icon (headless Chromium never does)."""
    page = browser.new_page()
    failed: list[str] = []
    errors: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(fastapi_server.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_load_state("networkidle")
    assert failed == [], failed
    assert errors == [], errors
    icon = page.evaluate("() => document.querySelector('link[rel=icon]')?.href")
    assert icon is not None, "the page names no icon: a browser asks for /favicon.ico (404)"
    assert icon.startswith("data:"), icon
    page.close()


def test_the_card_shows_the_renderer_s_label_as_text(
    browser: Any, fastapi_server: AppServer
) -> None:
    """A status body whose progress has a label (the renderer's words for its step) shows
    it beside the phase, as text even when it looks like HTML; without one, the phase
    alone."""
    project_id = new_project(fastapi_server, "Labelled")
    page = open_page(browser, fastapi_server)
    card = page.locator(f"#project-{project_id}")
    body = {
        "id": project_id,
        "status": "PROCESSING",
        "output_path": None,
        "progress": {
            "phase": "rendering",
            "fraction": 0.5,
            "done": 45,
            "total": 90,
            "eta_seconds": None,
            "live": True,
            "age_seconds": 0.2,
            "label": "Encoding <img src=x onerror=window.hit=1> vid\u00e9o",
        },
        "error": None,
    }
    page.evaluate("([id, body]) => show(id, body)", [project_id, body])
    phase = card.locator(".phase")
    sync_api.expect(phase).to_have_text(
        "rendering 50 % · Encoding <img src=x onerror=window.hit=1> vid\u00e9o"
    )
    assert card.locator(".phase img").count() == 0
    assert page.evaluate("() => window.hit") is None
    body["progress"]["label"] = None  # type: ignore[index]
    page.evaluate("([id, body]) => show(id, body)", [project_id, body])
    sync_api.expect(phase).to_have_text("rendering 50 %")
    page.close()
