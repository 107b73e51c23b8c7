"""An existing Django + DRF app adopting renderstate: guard, finish, files (docs/adopting.md).

Run from any directory: the SQLite database and the media directory are created under the
working directory. It drives the app through DRF's test client: an export (202), a second
click (409 with a problem+json body), the render finishing (COMPLETED, the video published
atomically), then a re-render that crashes halfway (FAILED, the previous video byte for byte
what it was, no temporary file left).
"""

# Django must be set up before the app's modules are imported.
# ruff: noqa: E402

import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "storyapp.settings")

import django

django.setup()

from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient
from storyapp import rendering, tasks
from storyapp.models import Project


def main() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0)
    project = Project.objects.create(title="The fox and the crow")
    client = APIClient()

    first = client.post(f"/projects/{project.pk}/export", format="json")
    second = client.post(f"/projects/{project.pk}/export", format="json")
    print(f"export: {first.status_code} {first.data['status']}")
    print(f"second click: {second.status_code} {second['Content-Type']}")
    print(f"  detail: {second.data['detail']}")
    tasks.wait(first.data["job"])
    shown = client.get(f"/projects/{project.pk}").data
    print(f"after the render: {shown['status']} {shown['video']}")

    final = Path(settings.MEDIA_ROOT) / "projects" / str(project.pk) / "final.mp4"
    before = hashlib.sha256(final.read_bytes()).hexdigest()
    rendering.FAIL_NEXT = True
    again = client.post(f"/projects/{project.pk}/export", format="json")
    tasks.wait(again.data["job"])
    shown = client.get(f"/projects/{project.pk}").data
    untouched = hashlib.sha256(final.read_bytes()).hexdigest() == before
    leftovers = sorted(p.name for p in final.parent.iterdir() if p.name != "final.mp4")
    print(f"re-render that crashed: {shown['status']}, still serving {shown['video']}")
    print(f"  previous video byte-identical: {untouched}; temporary files left: {leftovers}")


if __name__ == "__main__":
    main()
