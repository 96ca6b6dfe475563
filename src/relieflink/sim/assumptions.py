"""Every number the simulated relief day rests on that no published figure backs, in one place.

The city itself comes from :mod:`relieflink.scenario` (published figures, its own assumptions).
These shape the *operation*: how much arrives, who asks when, how deliveries go.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimAssumptions:
    # Donated kits arriving each morning, as a share of the packs households are entitled to
    # per day. Below 1 on purpose: stock is scarce, so the allocation policy matters.
    supply_ratio: float = 0.7
    # Warehouses' daily outbound capacity, as a multiple of the city generator's figure, so that
    # stock (who gets the scarce packs) rather than loading docks is what the demo is about.
    outbound_capacity_factor: float = 6.0
    # Share of households that ask for help on a given day, and the hours they ask in.
    request_share: float = 0.35
    first_request_hour: int = 7
    last_request_hour: int = 20
    # Requests sent twice (a worried second message 1-3 h later) and malformed ones (an unknown
    # kit code or a zero quantity, as hand-typed messages would have).
    duplicate_share: float = 0.06
    malformed_share: float = 0.03
    # Allocation and dispatch waves (hour of day).
    wave_hours: tuple[int, ...] = (9, 15)
    # Loading at the warehouse before vans leave, minutes.
    loading_minutes: int = 60
    # Van speed in the city, and the extra minutes of the last 100 metres per household: by robot
    # in sealed compounds (Shanghai's 2022 robots: 200 kg payload, 100 km range), on foot by a
    # volunteer or the courier elsewhere.
    van_speed_kmh: float = 25.0
    circuity: float = 1.3
    last_metre_minutes_robot: int = 25
    last_metre_minutes_foot: int = 10
    # Share of household deliveries that fail (not home, refused, damaged) and are carried over.
    failure_share: float = 0.05
    # Chance that a van breaks down on a wave; its parcels are re-planned two hours later.
    breakdown_share: float = 0.1
    breakdown_delay_minutes: int = 120
    # Online consultations: each day this share of households with a member on chronic
    # medication asks a doctor for a refill (JD Health served 37,000 such requests in Shanghai by
    # 9 April 2022); doctors on duty and minutes per consultation.
    consult_share: float = 0.03
    doctors_on_duty: int = 2
    consult_minutes: int = 12
    # Cost of a van-hour on the road, fen (for cost per delivered pack).
    van_cost_per_km_fen: int = 300
    van_fixed_cost_fen: int = 20000


ASSUMPTIONS = SimAssumptions()
