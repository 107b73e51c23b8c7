"""Adapters persist transitions; one module per store, all with the same method names.

- :mod:`renderstate.adapters.memory`: attributes on the object itself (the default).
- :mod:`renderstate.adapters.django`: Django models (``pip install 'renderstate[django]'``).
- :mod:`renderstate.adapters.sqlalchemy`: SQLAlchemy mapped classes
  (``pip install 'renderstate[sqlalchemy]'``).
- :mod:`renderstate.adapters.peewee`: Peewee models (``pip install 'renderstate[peewee]'``).

See "Write your own adapter" in the documentation for the contract.
"""
