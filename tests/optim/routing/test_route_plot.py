"""``route plot``: distinct colours for up to 100 routes, depots over the routes, a legend with
the cost and the number of vehicles."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from relieflink.cli.route import app
from relieflink.cli.route_plot import DISTINCT, draw_plan, min_difference, route_colours
from relieflink.optim.routing import generate_city_problem, load_instance, problem_to_json


def test_a_hundred_route_colours_are_told_apart() -> None:
    colours = route_colours(DISTINCT)
    assert len(set(colours)) == DISTINCT
    # CIELAB distance: about 2.3 is a just-noticeable difference; 10 is plainly another colour.
    assert min_difference(colours) > 10
    assert min_difference([*colours, "#ffffff", "#808080", "#000000"]) > 10
    assert route_colours(DISTINCT + 1)[-1] == colours[0]  # beyond 100 they repeat in order


def test_the_plot_draws_depots_on_top_and_a_legend_with_cost_and_vehicles(
    tmp_path: Path,
) -> None:
    problem = generate_city_problem(200, 2, seed=3, radius_km=3)
    path = tmp_path / "city.json"
    path.write_text(json.dumps(problem_to_json(problem)))
    ids = [s.id for s in problem.stops]
    plan = {"cost": 12345.6, "routes": [ids[k : k + 2] for k in range(0, 200, 2)]}
    fig = draw_plan(load_instance(path), plan)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 100
    assert len({line.get_color() for line in lines}) == 100
    depots = ax.collections[-1]
    assert len(depots.get_offsets()) == 2
    assert depots.get_zorder() > max(line.get_zorder() for line in lines)
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "cost 12,345.6\n100 vehicles"
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["depot", "stop", "route (one colour each)"]

    plan_file, png = tmp_path / "plan.json", tmp_path / "plan.png"
    plan_file.write_text(json.dumps(plan))
    res = CliRunner().invoke(app, ["plot", str(path), str(plan_file), "-o", str(png)])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    plan["routes"][3] = ["no-such-stop"]
    plan_file.write_text(json.dumps(plan))
    res = CliRunner().invoke(app, ["plot", str(path), str(plan_file), "-o", str(png)])
    assert res.exit_code == 2
    assert "route 3: unknown stop" in res.output
