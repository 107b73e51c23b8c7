"""Child process of the origin app's tests (examples/adopting_threads), run in its own cwd.

Usage:
    python adopting_threads_child.py kill     # render, then re-render and wait to be killed
    python adopting_threads_child.py cancel   # render, then re-render and cancel it

Both render a project through the app's API (the app's task manager's threads), print
``{"pk": ..., "sha": <the video's digest>}``, then start a long re-render and wait for
its frames. ``kill`` prints ``rendering`` and sleeps until the test SIGKILLs it; ``cancel``
posts the app's cancel and prints the project's state once it has ended as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "examples" / "adopting_threads"
sys.path.insert(0, str(APP))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "origin.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402
from studio.models import Project  # noqa: E402

SHORT = [{"color": [200, 30, 30], "seconds": 0.5}]
LONG = [{"color": [30, 200, 30], "seconds": 120.0}]


def wait_for(client: APIClient, pk: int, done: object, timeout: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, object] = client.get(f"/api/projects/{pk}/status/").json()
        if done(body):  # type: ignore[operator]
            return body
        time.sleep(0.05)
    msg = f"project {pk} never got there: {body}"
    raise TimeoutError(msg)


def listing(pk: int) -> list[str]:
    return sorted(p.name for p in (Path(settings.MEDIA_ROOT) / "projects" / str(pk)).iterdir())


def main(mode: str) -> None:
    call_command("migrate", verbosity=0)
    client = APIClient()
    project = Project.objects.create(title="kill me", scenes=SHORT)
    assert client.post(f"/api/projects/{project.pk}/render/").status_code == 202
    wait_for(client, project.pk, lambda b: b["status"] == "COMPLETED")
    final = Path(settings.MEDIA_ROOT) / "projects" / str(project.pk) / "final.mp4"
    sha = hashlib.sha256(final.read_bytes()).hexdigest()
    print(json.dumps({"pk": project.pk, "sha": sha}), flush=True)
    Project.objects.filter(pk=project.pk).update(scenes=LONG)
    assert client.post(f"/api/projects/{project.pk}/render/").status_code == 202
    wait_for(client, project.pk, lambda b: (b["progress"] or {}).get("current", 0) > 20)
    if mode == "kill":
        print("rendering", flush=True)
        time.sleep(600)
        return
    assert client.post(f"/api/projects/{project.pk}/cancel/").status_code == 202
    body = wait_for(client, project.pk, lambda b: b["status"] != "PROCESSING")
    same = hashlib.sha256(final.read_bytes()).hexdigest() == sha
    print(json.dumps({"status": body, "same": same, "listing": listing(project.pk)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
