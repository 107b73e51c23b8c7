"""DRF: renderstate errors answer as DRF responses with the problem body; others stay DRF's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rest_framework", reason="needs the drf extra")

CHILD = Path(__file__).with_name("drf_child.py")


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("drf") / "app.sqlite3"
    result = subprocess.run(
        [sys.executable, str(CHILD), str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answers


def test_a_second_export_is_a_drf_409_with_the_problem_body(answers: dict[str, Any]) -> None:
    """response.data is there, typed problem+json, and its detail is a sentence."""
    assert answers["first"]["status"] == 202
    assert answers["first"]["data"]["status"] == "PROCESSING"
    second = answers["second"]
    assert second["status"] == 409
    assert second["has_data"]  # a DRF Response, not a plain JsonResponse
    assert second["content_type"] == "application/problem+json"
    data = second["data"]
    assert json.loads(second["body"]) == data
    assert data["status"] == 409
    assert data["title"] == "Conflict"
    assert data["detail"].startswith("Project ")
    assert "is already PROCESSING" in data["detail"]
    assert data["detail"] != data["error"] == "RenderConflictError"
    assert data["current_status"] == "PROCESSING"


def test_a_browser_gets_the_browsable_page_not_a_mislabelled_body(
    answers: dict[str, Any],
) -> None:
    """Content negotiation still applies: HTML is served as text/html."""
    html = answers["second_html"]
    assert html["status"] == 409
    assert html["content_type"].startswith("text/html")
    assert "already PROCESSING" in html["body"]


def test_an_app_keeps_its_error_sentence_shape(answers: dict[str, Any]) -> None:
    """With error_sentence_handler, a 409 reads {"error": "<sentence>"} as plain JSON."""
    sentence = answers["sentence"]
    assert sentence["status"] == 409
    assert sentence["content_type"].startswith("application/json")
    data = sentence["data"]
    assert set(data) == {"error", "code", "request_id"}
    assert data["code"] == "RenderConflictError"
    assert data["error"] == answers["second"]["data"]["detail"]
    assert "already PROCESSING" in data["error"]
    assert " " in data["error"], "a sentence, not a class name"


def test_a_missing_project_is_a_problem_404(answers: dict[str, Any]) -> None:
    """ProjectNotFoundError raised in a view: 404 with its project key."""
    gone = answers["gone"]
    assert gone["status"] == 404
    assert gone["content_type"] == "application/problem+json"
    assert gone["data"]["project_key"] == "deleted-one"
    assert "does not exist" in gone["data"]["detail"]


def test_other_errors_keep_drf_own_answers(answers: dict[str, Any]) -> None:
    """Http404 and ValidationError are answered by DRF's default handler, as before."""
    unknown = answers["unknown_project"]
    assert unknown["status"] == 404
    assert unknown["content_type"] == "application/json"
    assert set(unknown["data"]) == {"detail"}
    invalid = answers["invalid"]
    assert invalid["status"] == 400
    assert invalid["content_type"] == "application/json"
    assert list(invalid["data"]) == ["title"]


def test_a_refused_job_fails_the_project_and_is_a_500(answers: dict[str, Any]) -> None:
    """claim_render in a DRF view: the broker being down leaves nothing PROCESSING."""
    assert answers["broker_down"]["status"] == 500
    assert answers["other_status"] == "FAILED"
    assert answers["video_status"] == "PROCESSING"  # its job was queued; 409s changed nothing
    assert len(answers["pending"]) == 2  # the first export, and the retry after on_commit


def test_a_refusal_rolls_back_the_request_transaction(answers: dict[str, Any]) -> None:
    """Under ATOMIC_REQUESTS a 409 answered by the handler commits nothing, as DRF's own."""
    assert answers["atomic"]["status"] == 409
    assert answers["atomic"]["content_type"] == "application/problem+json"
    assert answers["atomic_rows"] == 0


def test_a_hand_off_on_commit_that_fails_fails_the_project(answers: dict[str, Any]) -> None:
    """ATOMIC_REQUESTS: the start commits, then fail_on_error guards the on_commit hand-off."""
    assert answers["on_commit_down"]["status"] == 500
    assert answers["third_status"] == "FAILED"
    assert answers["on_commit_up"]["status"] == 202
    assert answers["third_status_after_retry"] == "PROCESSING"


def test_the_sentence_shape_rolls_back_and_keeps_server_details(answers: dict[str, Any]) -> None:
    """error_sentence_handler under ATOMIC_REQUESTS: a 409 and a 500 commit nothing, and the
    500's sentence names neither the server path nor the reason, only the request id."""
    conflict = answers["sentence_atomic"]
    assert conflict["status"] == 409
    assert set(conflict["data"]) == {"error", "code", "request_id"}
    assert answers["sentence_atomic_rows"] == 0
    server = answers["sentence_500"]
    assert server["status"] == 500
    assert server["content_type"].startswith("application/json")
    data = server["data"]
    assert set(data) == {"error", "code", "request_id"}
    assert data["request_id"] in data["error"]
    assert "/srv/secret" not in server["body"]
    assert "a test" not in server["body"]
    assert answers["sentence_500_rows"] == 0
