"""The demo report: one static HTML file, plots inlined as SVG (matplotlib), no network needed."""

from __future__ import annotations

import html
import io
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from relieflink.sim.metrics import GROUPS
from relieflink.sim.world import SimLog

COLOURS = {"priority": "#1b7f5f", "fifo": "#c2572b"}
LOCKDOWN = {"sealed": "s", "controlled": "D", "open": "o"}


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _deliveries_over_time(logs: dict[str, SimLog]) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for policy, log in logs.items():
        times = sorted(log.deliveries)
        t = [d[0] / 60 for d in times]
        cumulative = []
        total = 0
        for d in times:
            total += d[1]
            cumulative.append(total)
        ax.step(t, cumulative, where="post", label=policy, color=COLOURS[policy])
    ax.set_xlabel("hours since the first morning")
    ax.set_ylabel("packs delivered")
    ax.set_title("Deliveries over time")
    ax.legend()
    return _svg(fig)


def _time_by_group(summary: dict[str, Any]) -> str:
    """Share of each group's requests delivered within 24 hours (undelivered ones count as not
    served, so a policy cannot look better by serving fewer)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.38
    for i, policy in enumerate(("priority", "fifo")):
        values = [(summary[policy]["groups"][g]["served_within_24h"] or 0) * 100 for g in GROUPS]
        xs = [x + (i - 0.5) * width for x in range(len(GROUPS))]
        ax.bar(xs, values, width, label=policy, color=COLOURS[policy])
    ax.set_xticks(range(len(GROUPS)), GROUPS)
    ax.set_ylabel("% delivered within 24 h")
    ax.set_ylim(0, 100)
    ax.set_title("Served within 24 hours of asking, by group (requests that had 24 h)")
    ax.legend()
    return _svg(fig)


def _stock(log: SimLog) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    series: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for t, code, units in log.stock:
        series[code].append((t / 60, units))
    for code, points in sorted(series.items()):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=code)
    ax.set_xlabel("hours")
    ax.set_ylabel("kits available")
    ax.set_title(f"Stock by warehouse ({log.policy})")
    ax.legend(fontsize=7, ncol=3)
    return _svg(fig)


def _donors(rows: list[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [r["donor"][:18] for r in rows]
    width = 0.27
    for i, key in enumerate(("pledged", "received", "delivered")):
        ax.bar(
            [x + (i - 1) * width for x in range(len(rows))],
            [r[key] for r in rows],
            width,
            label=key,
        )
    ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("packs")
    ax.set_title("Donor trace: pledged → received → delivered")
    ax.legend()
    return _svg(fig)


def _map(log: SimLog) -> str:
    asked: Counter[int] = Counter()
    for r in log.requests.values():
        asked[r.community_id] += r.packs
    got: Counter[int] = Counter()
    for _, packs, community, _ in log.deliveries:
        got[community] += packs
    fig, ax = plt.subplots(figsize=(7, 6))
    for path in log.routes:
        ax.plot([p[1] for p in path], [p[0] for p in path], color="#888", linewidth=0.6, alpha=0.6)
    for status, marker in LOCKDOWN.items():
        points = [(cid, c) for cid, c in log.communities.items() if c[3] == status]
        if not points:
            continue
        coverage = [got[cid] / asked[cid] if asked[cid] else 1.0 for cid, _ in points]
        sc = ax.scatter(
            [c[2] for _, c in points],
            [c[1] for _, c in points],
            c=coverage,
            cmap="RdYlGn",
            vmin=0,
            vmax=1,
            marker=marker,
            s=60,
            edgecolors="k",
            linewidths=0.4,
            label=f"{status} compound",
        )
    ax.scatter(
        [w[1] for w in log.warehouses.values()],
        [w[0] for w in log.warehouses.values()],
        marker="^",
        s=120,
        color="#224",
        label="warehouse",
    )
    fig.colorbar(sc, ax=ax, label="share of requested packs delivered")
    # Framed on the compounds that asked: a far depot's routes run off the edge.
    served = [log.communities[cid] for cid in asked] or list(log.communities.values())
    lats, lons = [c[1] for c in served], [c[2] for c in served]
    pad = 0.1 * max(max(lats) - min(lats), max(lons) - min(lons), 0.005)
    ax.set_xlim(min(lons) - pad, max(lons) + pad)
    ax.set_ylim(min(lats) - pad, max(lats) + pad)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(f"Coverage and the dispatch routes driven ({log.policy})")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_aspect(1.17)
    return _svg(fig)


def _at(figures: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        figures = figures.get(key, 0) if isinstance(figures, dict) else None
    return figures


def _count(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _yuan(value: float | None) -> str:
    return "–" if value is None else f"¥{value:,.2f}"


def _hours(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} h"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


Row = tuple[str, Callable[[str], str]]


def figure_rows(summary: dict[str, Any]) -> list[Row]:
    """The key figures, labelled with what they count, as (label, policy → text): the median
    over the seeds, with [lowest–highest] when there were several."""
    many = len(summary["seeds"]) > 1

    def row(label: str, path: tuple[str, ...], fmt: Callable[[Any], str] = _count) -> Row:
        def value(policy: str) -> str:
            text = fmt(_at(summary[policy], path))
            spread = _at(summary["spread"][policy], path)
            if many and isinstance(spread, list):
                text += f" [{fmt(spread[0])}–{fmt(spread[1])}]"
            return text

        return label, value

    def keys(*path: str) -> list[str]:
        return sorted(
            set(_at(summary["priority"], path) or {}) | set(_at(summary["fifo"], path) or {})
        )

    rows = [
        row("requests accepted from households", ("requests_by_source", "household")),
        row("prescriptions written by doctors", ("requests_by_source", "prescription")),
        row("packs delivered", ("delivered_packs",)),
        row("packs asked for and not delivered", ("unmet_packs",)),
        row("failed deliveries (carried over)", ("failed_deliveries",)),
        *(
            row(f"{kind} breakdowns (re-planned)", ("breakdowns_by_kind", kind))
            for kind in keys("breakdowns_by_kind")
        ),
        row("broken vehicles replaced the same day", ("vehicles_replaced_same_day",)),
        row("vehicle-days lost to couriers locked in", ("vehicle_days_off",)),
        row("waves (scheduled, and trips of vehicles back early)", ("waves",)),
        row("re-plans after a breakdown", ("replans",)),
        row("dispatch routes driven", ("routes_driven",)),
        row("route kilometres", ("route_km",)),
        row("cost per delivered pack, with labour", ("cost_per_delivered_pack_yuan",), _yuan),
        row("last-metre packs carried by robot", ("robot_share_of_last_metre",), _pct),
        *(
            row(f"parcels pending at the end: {reason}", ("parcels_pending_at_end", reason))
            for reason in keys("parcels_pending_at_end")
        ),
    ]
    rows += [
        *(
            row(
                f"held back at the last allocation: {reason}",
                ("stock_held_back_at_last_allocation", reason),
            )
            for reason in keys("stock_held_back_at_last_allocation")
        ),
        row("gate to last door, median", ("gate_hours_to_last_door", "median"), _hours),
        row("gate to last door, 95th percentile", ("gate_hours_to_last_door", "p95"), _hours),
        *(
            row(f"{kind} hours driven", ("vehicle_hours_by_kind", kind))
            for kind in keys("vehicle_hours_by_kind")
        ),
    ]
    for sku in keys("kits"):
        rows.append(
            row(f"{sku}: received per unit asked", ("kits", sku, "received_per_asked"), _pct)
        )
    for group in GROUPS:
        rows += [
            row(f"{group}: requests with 24 h to be served", ("groups", group, "eligible_24h")),
            row(f"{group}: served within 24 h", ("groups", group, "served_within_24h"), _pct),
            row(
                f"{group}: stock reserved in full by the end",
                ("groups", group, "allocated_in_full"),
                _pct,
            ),
            row(
                f"{group}: served within 24 h, of those reserved in full",
                ("groups", group, "served_within_24h_of_allocated"),
                _pct,
            ),
            row(f"{group}: median wait", ("groups", group, "median_hours_to_delivery"), _hours),
            row(
                f"{group}: 95th percentile wait", ("groups", group, "p95_hours_to_delivery"), _hours
            ),
        ]
    return rows


def _figures_table(summary: dict[str, Any]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value('priority'))}</td>"
        f"<td>{html.escape(value('fifo'))}</td></tr>"
        for label, value in figure_rows(summary)
    )
    return (
        f"<table><tr><th></th><th>priority</th><th>first come, first served</th></tr>{body}</table>"
    )


def _what_if(summary: dict[str, Any]) -> str:
    changed = summary.get("assumptions_changed") or {}
    if not changed:
        return ""
    items = ", ".join(
        f"<code>{html.escape(k)} = {html.escape(str(v))}</code>" for k, v in changed.items()
    )
    return f" <b>What-if:</b> this run changed {items} from <code>sim/assumptions.py</code>."


def _fleet(summary: dict[str, Any]) -> str:
    mix = summary["priority"]["fleet"]
    names = (("trucks", "truck"), ("vans", "van"), ("ebikes", "e-bike"), ("robots", "robot"))
    parts = [f"{mix[key]:,} {name}{'' if mix[key] == 1 else 's'}" for key, name in names]
    return ", ".join(parts) + f" and {mix['volunteers']:,} volunteers in compound teams"


def _answers(summary: dict[str, Any], logs: dict[str, SimLog]) -> str:
    kinds = sorted(set(summary["priority"]["answers"]) | set(summary["fifo"]["answers"]))
    answers = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{summary['priority']['answers'].get(k, 0)}</td>"
        f"<td>{summary['fifo']['answers'].get(k, 0)}</td></tr>"
        for k in kinds
    )
    reasons = {p: Counter(reason for _, _, reason in log.failures) for p, log in logs.items()}
    failures = "".join(
        f"<tr><th>{html.escape(r)}</th><td>{reasons['priority'].get(r, 0)}</td>"
        f"<td>{reasons['fifo'].get(r, 0)}</td></tr>"
        for r in sorted(set(reasons["priority"]) | set(reasons["fifo"]))
    )
    broke = {p: Counter(kind for _, kind, _ in log.breakdowns) for p, log in logs.items()}
    breakdowns = "".join(
        f"<tr><th>{html.escape(kind)} breakdowns</th><td>{broke['priority'][kind]}</td>"
        f"<td>{broke['fifo'][kind]}</td></tr>"
        for kind in sorted(set(broke["priority"]) | set(broke["fifo"]))
    )
    return (
        "<h2>How requests were answered</h2><table><tr><th></th><th>priority</th><th>FCFS</th></tr>"
        f"{answers}</table><h2>What went wrong</h2><table><tr><th>failed deliveries, by reason</th>"
        f"<th>priority</th><th>FCFS</th></tr>{failures}{breakdowns}</table>"
    )


def write_report(out: Path, summary: dict[str, Any], logs: dict[str, SimLog]) -> Path:
    """Write ``out/index.html`` and return its path."""
    reconciled = "yes" if summary["ledger_reconciled"] else "NO"
    city = summary["city"]
    after = summary["delivery_days_after_last_request"]
    after = f"{after} more day" if after == 1 else f"{after} more days"
    runs = summary["seeds"]
    seeds_note = (
        f"Figures are medians over seeds {runs[0]}–{runs[-1]}, [lowest–highest] in brackets; "
        f"the charts show seed {runs[0]}."
        if len(runs) > 1
        else ""
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RelieFlink demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 980px; margin: 2rem auto;
  padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .3rem .8rem; text-align: right; }}
th:first-child {{ text-align: left; font-weight: normal; }}
.figure svg {{ max-width: 100%; height: auto; }}
.note {{ color: #555; font-size: .9rem; }}
</style></head><body>
<h1>RelieFlink · a simulated relief operation</h1>
<p class="note">Synthetic Shanghai at scale {summary["scale"]}:
{summary["households"]:,} households in {city["communities"]} communities,
{city["warehouses"]} warehouses (seed {summary["seed"]}). Donations: {summary["supply_ratio"]:.0%}
of the packs the households expected to ask each day are entitled to, each morning.
Fleet: {_fleet(summary)}.
{summary["days"]} days of requests and donations, then {after} of deliveries with no new
requests, so that every request had 24 hours to be served: shares within 24 hours are over the
requests asked at least 24 hours before the end. The same city, stock and events (each
household's, each vehicle's own random draws) under two policies. {seeds_note}{_what_if(summary)}
Ledger reconciled (every balance, every donor): <b>{reconciled}</b>.</p>
<h2>Key figures</h2>
{_figures_table(summary)}
<div class="figure">{_time_by_group(summary)}</div>
<div class="figure">{_deliveries_over_time(logs)}</div>
<div class="figure">{_map(logs["priority"])}</div>
<div class="figure">{_stock(logs["priority"])}</div>
<div class="figure">{_donors(summary["priority"]["donors"])}</div>
{_answers(summary, logs)}
<p class="note">Generated by <code>relieflink demo</code>. Assumptions behind the simulated
operation: <code>relieflink/sim/assumptions.py</code>; behind the city:
<code>relieflink/scenario/figures.py</code>.</p>
</body></html>"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
