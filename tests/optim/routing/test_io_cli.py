from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import vrplib
from typer.testing import CliRunner

from relieflink.cli.route import app
from relieflink.optim.routing import (
    SerialExecutor,
    check_solution,
    generate_city_problem,
    load_instance,
    problem_from_json,
    problem_to_json,
    solve_routing,
)

INSTANCES = Path("/work/shared/instances")
X_SMALL = INSTANCES / "CVRP_X" / "X-n101-k25.vrp"
GH = INSTANCES / "VRPTW_GH1000" / "C1_10_1.vrp"
needs_instances = pytest.mark.skipif(not X_SMALL.exists(), reason="shared instances missing")


def _route_cost(provider, routes, n_dep: int = 1) -> int:  # type: ignore[no-untyped-def]
    total = 0
    for r in routes:
        seq = np.array([0, *[c - 1 + n_dep for c in r], 0])
        total += int(np.diagonal(provider.distances(seq[:-1], seq[1:])).sum())
    return total


@needs_instances
def test_bks_solution_costs_match_file_conventions() -> None:
    x = load_instance(X_SMALL)
    bks = vrplib.read_solution(str(X_SMALL.with_suffix(".sol")))
    assert _route_cost(x.provider, bks["routes"]) == bks["cost"] == 27591
    gh = load_instance(GH)
    bks = vrplib.read_solution(str(GH.with_suffix(".sol")))
    assert _route_cost(gh.provider, bks["routes"]) / gh.cost_divisor == pytest.approx(bks["cost"])


@needs_instances
def test_cli_solve_writes_checkable_json_and_sol(tmp_path: Path) -> None:
    out_json, out_sol = tmp_path / "plan.json", tmp_path / "plan.sol"
    res = CliRunner().invoke(
        app,
        [
            "solve",
            str(X_SMALL),
            "--iterations",
            "300",
            "--workers",
            "1",
            "--quiet",
            "--json",
            str(out_json),
            "--sol",
            str(out_sol),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "cost" in res.output and "feasible" in res.output
    plan = json.loads(out_json.read_text())
    assert set(plan) >= {"cost", "routes", "unassigned", "runtime_s"}
    visited = sorted(c for r in plan["routes"] for c in r)
    assert visited == list(range(1, 101))  # VRPLIB numbering, depot left out
    # Independent recomputation with vrplib's own rounded Euclidean edge weights.
    inst = vrplib.read_instance(str(X_SMALL))
    w, q = np.rint(inst["edge_weight"]), inst["demand"]  # X convention: nint per edge
    cost = sum(
        w[0, r[0]] + sum(w[a, b] for a, b in itertools.pairwise(r)) + w[r[-1], 0]
        for r in plan["routes"]
    )
    assert plan["cost"] == round(cost)
    assert all(sum(q[c] for c in r) <= inst["capacity"] for r in plan["routes"])
    sol = vrplib.read_solution(str(out_sol))
    assert sol["routes"] == plan["routes"] and sol["cost"] == plan["cost"]
    png = tmp_path / "plan.png"
    res = CliRunner().invoke(app, ["plot", str(X_SMALL), str(out_json), "-o", str(png)])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"depots": [], "stops": [], "vehicle_types": []}')
    res = CliRunner().invoke(app, ["solve", str(bad), "--iterations", "10"])
    assert res.exit_code == 2
    assert "no depots" in res.output
    res = CliRunner().invoke(app, ["solve", str(bad)])
    assert res.exit_code == 2


def test_json_roundtrip_and_solve(tmp_path: Path) -> None:
    p = generate_city_problem(60, 2, seed=1, radius_km=3)
    assert problem_from_json(json.loads(json.dumps(problem_to_json(p)))) == p
    path = tmp_path / "city.json"
    path.write_text(json.dumps(problem_to_json(p)))
    loaded = load_instance(path)
    result = solve_routing(loaded.problem, iterations=100, executor=SerialExecutor())
    assert check_solution(loaded.problem, result) == []
    bad = problem_to_json(p)
    bad["stops"][0]["weight_g"] = -5
    with pytest.raises(ValueError, match=r"stops\[0\]"):
        problem_from_json(bad)
