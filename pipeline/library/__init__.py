"""SQL by area: plain functions taking the Library database (one module per area)."""
