"""Adapters persist transitions; one module per store, all with the same method names.

- :mod:`renderstate.adapters.memory`: attributes on the object itself (the default).

See "Write your own adapter" in the documentation for the contract.
"""
