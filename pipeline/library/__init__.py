"""Library SQL by area: plain functions taking the Library (or its database)."""
