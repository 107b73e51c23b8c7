"""The ledger tests reuse the adapter tests' databases and harness fixtures."""

from __future__ import annotations

from adapters.conftest import backend, db_targets, harness

__all__ = ["backend", "db_targets", "harness"]
