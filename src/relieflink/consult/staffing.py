"""How many doctors are needed: Erlang C (M/M/c) per hour of the day.

Pure functions (no database). ``erlang_c`` uses the Erlang B recursion, which is numerically
stable for any number of servers (no factorials, no powers that overflow), and converts:
``C = c·B / (c − A·(1 − B))``.

Model and its limits, stated plainly: arrivals are Poisson with the hour's rate, service times
exponential with the given mean, one queue served first come first served. Urgency levels are
served by priority in reality; we size for each level *as if it waited in the whole queue*, which
is conservative for the urgent levels (priority makes their wait shorter) and, for the lowest
level, may be optimistic. The plan takes, per hour, the largest number any level needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with ``load`` = arrival rate × mean service time."""
    if servers < 0 or load < 0:
        raise ValueError("servers and load must be non-negative")
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits (M/M/c); 1.0 when the queue is unstable (load ≥ c)."""
    if load <= 0:
        return 0.0
    if servers <= load:
        return 1.0
    b = erlang_b(servers, load)
    return servers * b / (servers - load * (1.0 - b))


def prob_wait_within(servers: int, load: float, service_minutes: float, target: float) -> float:
    """P(wait ≤ ``target`` minutes) in M/M/c."""
    if load <= 0:
        return 1.0
    if servers <= load:
        return 0.0
    c = erlang_c(servers, load)
    return 1.0 - c * math.exp(-(servers - load) * target / service_minutes)


def mean_wait_minutes(servers: int, load: float, service_minutes: float) -> float:
    """Mean wait in M/M/c (infinite when unstable)."""
    if load <= 0:
        return 0.0
    if servers <= load:
        return math.inf
    return erlang_c(servers, load) * service_minutes / (servers - load)


def servers_needed(
    arrivals_per_hour: float,
    service_minutes: float,
    target_minutes: float,
    service_level: float,
    *,
    max_servers: int = 10_000,
) -> int:
    """The fewest servers with P(wait ≤ target) ≥ ``service_level`` (0 when nobody arrives)."""
    if arrivals_per_hour < 0 or service_minutes <= 0 or target_minutes < 0:
        raise ValueError("arrivals must be ≥ 0, service time > 0 and target ≥ 0")
    if not 0 < service_level < 1:
        raise ValueError("service_level must be strictly between 0 and 1")
    load = arrivals_per_hour * service_minutes / 60.0
    if load == 0:
        return 0
    c = max(1, math.floor(load) + 1)
    while prob_wait_within(c, load, service_minutes, target_minutes) < service_level:
        c += 1
        if c > max_servers:
            raise ValueError(f"more than {max_servers} servers needed; check the inputs")
    return c


@dataclass(frozen=True)
class HourPlan:
    hour: int
    arrivals_per_hour: float
    load_erlangs: float
    needed_by_level: Mapping[str, int]
    doctors_needed: int
    mean_wait_minutes: float


def staffing_plan(
    arrivals_by_hour: Sequence[float],
    *,
    service_minutes: float,
    targets: Mapping[str, float],
    service_level: float = 0.8,
) -> list[HourPlan]:
    """Doctors needed for each hour (24 rates, arrivals per hour) so that, for every urgency
    level, ``service_level`` of requests reach a doctor within that level's target."""
    if len(arrivals_by_hour) != 24:
        raise ValueError(f"give 24 hourly arrival rates, not {len(arrivals_by_hour)}")
    plans = []
    for hour, rate in enumerate(arrivals_by_hour):
        needed = {
            level: servers_needed(rate, service_minutes, target, service_level)
            for level, target in targets.items()
        }
        doctors = max(needed.values(), default=0)
        load = rate * service_minutes / 60.0
        plans.append(
            HourPlan(
                hour=hour,
                arrivals_per_hour=rate,
                load_erlangs=load,
                needed_by_level=needed,
                doctors_needed=doctors,
                mean_wait_minutes=mean_wait_minutes(doctors, load, service_minutes),
            )
        )
    return plans
