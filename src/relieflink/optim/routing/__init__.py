"""Multi-depot, mixed-fleet vehicle routing on top of PyVRP.

Public API::

    problem = RoutingProblem(depots, stops, vehicle_types)
    result = solve_routing(problem, time_limit=60, seed=1)      # or iterations=2000
    assert not check_solution(problem, result)                  # independent checker
    result.cost(), result.is_feasible(), result.summary()

``_pyvrp`` is the only module that imports PyVRP.
"""

from relieflink.optim.routing.checker import check_solution, default_provider
from relieflink.optim.routing.executors import (
    AsyncExecutor,
    DaskExecutor,
    Executor,
    LocalProcessExecutor,
    SerialExecutor,
    make_executor,
)
from relieflink.optim.routing.generate import generate_city_problem
from relieflink.optim.routing.io import (
    LoadedInstance,
    load_instance,
    problem_from_json,
    problem_to_json,
    result_to_json,
    write_vrplib_solution,
)
from relieflink.optim.routing.model import (
    DEFAULT_SPEED_KMH,
    Depot,
    RoutingProblem,
    Stop,
    VehicleKind,
    VehicleType,
)
from relieflink.optim.routing.result import (
    PlannedRoute,
    RoutingResult,
    Unassigned,
    Violation,
    Visit,
)
from relieflink.optim.routing.solver import MAX_SEED, ProgressEvent, RoutingParams, solve_routing

__all__ = [
    "DEFAULT_SPEED_KMH",
    "MAX_SEED",
    "AsyncExecutor",
    "DaskExecutor",
    "Depot",
    "Executor",
    "LoadedInstance",
    "LocalProcessExecutor",
    "PlannedRoute",
    "ProgressEvent",
    "RoutingParams",
    "RoutingProblem",
    "RoutingResult",
    "SerialExecutor",
    "Stop",
    "Unassigned",
    "VehicleKind",
    "VehicleType",
    "Violation",
    "Visit",
    "check_solution",
    "default_provider",
    "generate_city_problem",
    "load_instance",
    "make_executor",
    "problem_from_json",
    "problem_to_json",
    "result_to_json",
    "solve_routing",
    "write_vrplib_solution",
]
