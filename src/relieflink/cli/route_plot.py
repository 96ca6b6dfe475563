"""The drawing behind ``relieflink route plot``: one distinct colour per route (up to 100), the
depots drawn over the routes, and a legend with the plan's cost and number of vehicles."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from relieflink.optim.routing import LoadedInstance

DISTINCT = 100  # colours told apart; a plan with more routes reuses them in order
_AVOID = ["#ffffff", "#808080", "#000000"]  # the background, the stops and the depots


def _lab(rgb: NDArray[np.float64]) -> NDArray[np.float64]:
    """sRGB in [0, 1] (rows) → CIELAB (D65), where distance is roughly perceived difference."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array(
        [[0.4124, 0.2126, 0.0193], [0.3576, 0.7152, 0.1192], [0.1805, 0.0722, 0.9505]]
    )
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


def _hex_rgb(colours: list[str]) -> NDArray[np.float64]:
    return np.array([[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in colours])


@cache
def _palette() -> tuple[str, ...]:
    """:data:`DISTINCT` colours, each the one farthest (in CIELAB) from all chosen before it and
    from white, grey and black: deterministic, and every prefix is as spread as it can be."""
    steps = np.linspace(0, 1, 16)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    lab = _lab(grid)
    nearest = np.min(
        np.linalg.norm(lab[:, None, :] - _lab(_hex_rgb(_AVOID))[None, :, :], axis=2), axis=1
    )
    chosen: list[int] = []
    for _ in range(DISTINCT):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[pick], axis=1))
    return tuple("#" + "".join(f"{round(v * 255):02x}" for v in grid[i]) for i in chosen)


def route_colours(n: int) -> list[str]:
    """``n`` route colours, distinct up to :data:`DISTINCT`."""
    palette = _palette()
    return [palette[k % DISTINCT] for k in range(n)]


def min_difference(colours: list[str]) -> float:
    """The smallest CIELAB distance between two of ``colours`` (how alike the closest are)."""
    lab = _lab(_hex_rgb(colours))
    d = np.linalg.norm(lab[:, None, :] - lab[None, :, :], axis=2)
    return float(np.min(d[np.triu_indices(len(colours), 1)]))


def draw_plan(loaded: LoadedInstance, data: dict[str, Any]) -> Figure:
    """The figure of a plan (``route solve --json``) on its problem. Raises ``ValueError``
    naming the route and the stop when a route visits a stop the problem does not have."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    problem = loaded.problem
    by_id = {s.id: i for i, s in enumerate(problem.stops)}
    by_number = {loaded.client_number(i): i for i in range(len(problem.stops))}
    routes = data.get("routes", [])
    fig = Figure(figsize=(9, 8))
    ax = fig.subplots()
    ax.scatter([s.lon for s in problem.stops], [s.lat for s in problem.stops], s=3, c="grey")
    depots = problem.depots
    vehicle_types = data.get("vehicle_types") or [None] * len(routes)
    for k, (route, colour) in enumerate(zip(routes, route_colours(len(routes)), strict=True)):
        try:
            idx = [by_number[int(x)] for x in route] if loaded.vrplib else [by_id[x] for x in route]
        except (KeyError, ValueError) as exc:
            raise ValueError(f"route {k}: unknown stop {exc}") from None
        dep = depots[0]
        for vt in problem.vehicle_types:
            if vt.id == vehicle_types[k]:
                dep = depots[problem.depot_index[vt.start_depot]]
        xs = [dep.lon] + [problem.stops[i].lon for i in idx] + [dep.lon]
        ys = [dep.lat] + [problem.stops[i].lat for i in idx] + [dep.lat]
        ax.plot(xs, ys, lw=0.9, color=colour, zorder=2)
    # The depots over every route (a route starts and ends on them and would hide them).
    ax.scatter(
        [d.lon for d in depots],
        [d.lat for d in depots],
        marker="s",
        c="black",
        edgecolors="white",
        linewidths=1.2,
        s=90,
        zorder=10,
    )
    ax.set_title(problem.name)
    ax.set_aspect("equal", adjustable="datalim")
    ax.ticklabel_format(useOffset=False)  # plain degrees, not "+1.214e2"
    handles = [
        Line2D([], [], marker="s", ls="", color="black", markersize=8, label="depot"),
        Line2D([], [], marker="o", ls="", color="grey", markersize=3, label="stop"),
        Line2D([], [], color=route_colours(1)[0], label="route (one colour each)"),
    ]
    ax.legend(
        handles=handles,
        title=f"cost {data.get('cost', 0):,.1f}\n{len(routes)} vehicles",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    fig.tight_layout()
    return fig
