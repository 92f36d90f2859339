"""The library's SQL by area: plain functions taking the Library database."""
