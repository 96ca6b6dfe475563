"""The columns of each CSV file format, in file order: the one list that the importers
(``bulk/``, the fleet), the exports and the scenario generator share.

Plain tuples and no imports, so that the scenario generator, which may not import the database
layer or pydantic, uses them too. ``bulk/formats.py`` checks them against the ``*Create``
schemas (a foreign key id is written as the referenced row's code: ``community_id`` →
``community_code``).
"""

from __future__ import annotations

from typing import Final

ORGANIZATIONS: Final = ("code", "kind", "name", "name_zh", "country", "contact", "address")
DISTRICTS: Final = ("code", "name", "name_zh", "population", "area_km2", "lat", "lon")
COMMUNITIES: Final = (
    "code",
    "name",
    "name_zh",
    "district_code",
    "lat",
    "lon",
    "households",
    "residents",
    "lockdown_status",
    "vehicles_allowed",
    "committee_code",
)
WAREHOUSES: Final = (
    "code",
    "name",
    "name_zh",
    "owner_code",
    "lat",
    "lon",
    "capacity_kg",
    "capacity_m3",
    "daily_outbound_kg",
    "temporary",
)
HOUSEHOLDS: Final = (
    "code",
    "community_code",
    "building",
    "unit",
    "size",
    "infants",
    "pregnant",
    "chronic",
    "elderly_80",
    "disabled",
    "phone",
)
ITEMS: Final = (
    "sku",
    "name",
    "name_zh",
    "category",
    "unit",
    "grams_per_unit",
    "ml_per_unit",
    "kcal_per_unit",
    "protein_g_per_unit",
    "fat_g_per_unit",
    "shelf_life_days",
    "cold_chain",
    "prescription_only",
    "hs_code",
    "gross_grams_per_unit",
)
# A compound's volunteer team; the leader is a user (role volunteer) written by username.
TEAMS: Final = (
    "code",
    "community_code",
    "leader_username",
    "headcount",
    "trolley_capacity_kg",
    "shift_start_s",
    "shift_end_s",
    "active",
)
VEHICLES: Final = (
    "code",
    "carrier_code",
    "kind",
    "depot_code",
    "count",
    "capacity_kg",
    "capacity_m3",
    "speed_kmh",
    "range_km",
    "shift_start",
    "shift_end",
)
PROGRAMS: Final = (
    "code",
    "name",
    "name_zh",
    "region",
    "country",
    "organization_code",
    "start_date",
    "end_date",
)
PLEDGES: Final = (
    "code",
    "donor_code",
    "recipient_code",
    "program_code",
    "declared_value_fen",
    "item_sku",
    "quantity",
    "expected_arrival",
)
