"""The library: the only package that writes SQL (connection, schema + migrations, one module per area).

``db`` opens the database (WAL, BEGIN IMMEDIATE transactions, paths); ``migrations`` holds the schema and the one
ordered migrations list; the area modules (``items``, ``lines``, ``edits``, ``scripts``, ``voices``, ``chat``,
``jobs``) are plain functions taking the database handle. Everything above calls them.
"""

from .db import BUSY_WAIT, Library, LibraryDatabase  # noqa: F401
from .migrations import MIGRATIONS  # noqa: F401
from .values import dumps, now  # noqa: F401
