"""The ledger tests reuse the adapter tests' databases and harness fixtures."""

from __future__ import annotations

import pytest

from adapters.conftest import BACKEND_PARAMS, backend, db_targets, harness, target_for
from adapters.databases import Target

from .contract import LedgerHarness

__all__ = ["backend", "db_targets", "harness", "sql_harness"]


@pytest.fixture(
    params=[
        pytest.param((store, b.values[0]), marks=b.marks, id=f"{store}-{b.id}")
        for store in ("sqlalchemy", "django", "peewee")
        for b in BACKEND_PARAMS
    ]
)
def sql_harness(
    request: pytest.FixtureRequest, db_targets: dict[str, Target | Exception]
) -> LedgerHarness:
    """Each SQL store's ledger harness (its reference model) on each database, prepared."""
    from .test_django import DjangoLedgerHarness  # noqa: PLC0415 - the modules import this one
    from .test_peewee import PeeweeLedgerHarness  # noqa: PLC0415
    from .test_sqlalchemy import SQLAlchemyLedgerHarness  # noqa: PLC0415

    classes: dict[str, type[LedgerHarness]] = {
        "sqlalchemy": SQLAlchemyLedgerHarness,
        "django": DjangoLedgerHarness,
        "peewee": PeeweeLedgerHarness,
    }
    store, backend = request.param
    made = classes[store](target_for(db_targets, backend), variant=False)
    made.prepare()
    return made
