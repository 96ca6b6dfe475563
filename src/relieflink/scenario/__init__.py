"""Synthetic city generator from public aggregate figures (deterministic by seed).

A pure generator: it writes the CSV import format and never touches the database. Every number
that shapes the city is in :mod:`relieflink.scenario.figures`, published figures with their
sources and assumptions named as such.
"""

from relieflink.scenario.figures import ASSUMPTIONS, PUBLISHED, derived_rates, load_districts
from relieflink.scenario.generator import (
    FILE_HEADERS,
    CityManifest,
    ProgressCallback,
    generate_city,
)

__all__ = [
    "ASSUMPTIONS",
    "FILE_HEADERS",
    "PUBLISHED",
    "CityManifest",
    "ProgressCallback",
    "derived_rates",
    "generate_city",
    "load_districts",
]
