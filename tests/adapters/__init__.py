"""Adapter tests: one shared contract (contract.py), one small harness per ORM."""
