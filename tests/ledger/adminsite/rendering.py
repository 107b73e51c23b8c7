"""The site's runners: one that renders, one whose renders fail; one ledger."""

from __future__ import annotations

from django.conf import settings

from djangoapp.models import Project
from renderstate import RenderRunner
from renderstate.adapters.django import DjangoAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.django import DjangoAttemptStore
from renderstate.testing import FakeRenderer, InlineExecutor

store = DjangoAttemptStore()
ledger = Ledger(store)


def _runner(renderer: FakeRenderer) -> RenderRunner[Project]:
    return RenderRunner(
        DjangoAdapter(),
        renderer,
        media_root=settings.MEDIA_ROOT,
        executor=InlineExecutor(),
        ledger=ledger,
        loader=store.loader(Project),
    )


runner = _runner(FakeRenderer(frames=2))
failing = _runner(FakeRenderer(frames=3, fail_at_frame=1, exception=RuntimeError("disk on fire")))
hostile = _runner(
    FakeRenderer(frames=3, fail_at_frame=1, exception=RuntimeError("<img src=x onerror=alert(2)>"))
)
