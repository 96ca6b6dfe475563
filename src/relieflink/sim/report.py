"""The demo report: one static HTML file, plots inlined as SVG (matplotlib), no network needed."""

from __future__ import annotations

import html
import io
from collections import Counter, defaultdict
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
    ax.set_title("Served within 24 hours of asking, by group")
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
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(f"Coverage and the dispatch routes driven ({log.policy})")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_aspect(1.17)
    return _svg(fig)


def _figures_table(summary: dict[str, Any]) -> str:
    rows = [
        ("requests accepted", "requests"),
        ("packs delivered", "delivered_packs"),
        ("packs still needed", "unmet_packs"),
        ("failed deliveries (carried over)", "failed_deliveries"),
        ("vehicle breakdowns (re-planned)", "van_breakdowns"),
        ("mid-day re-plans", "replans"),
        ("vehicle-days lost to couriers locked in", "vehicle_days_off"),
        ("dispatch routes driven", "routes_driven"),
        ("route kilometres", "route_km"),
        ("cost per delivered pack (fen)", "cost_per_delivered_pack_fen"),
        ("robot share of last-metre packs", "robot_share_of_last_metre"),
    ]
    body = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{summary['priority'][key]}</td>"
        f"<td>{summary['fifo'][key]}</td></tr>"
        for label, key in rows
    )
    for group in GROUPS:
        p, f = summary["priority"]["groups"][group], summary["fifo"]["groups"][group]
        body += (
            f"<tr><th>{group}: served within 24 h / median h</th>"
            f"<td>{_pct(p['served_within_24h'])} / {_hours(p['median_hours_to_delivery'])}</td>"
            f"<td>{_pct(f['served_within_24h'])} / {_hours(f['median_hours_to_delivery'])}</td>"
            "</tr>"
        )
    return (
        f"<table><tr><th></th><th>priority</th><th>first come, first served</th></tr>{body}</table>"
    )


def _hours(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


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
    breakdowns = "".join(
        f"<tr><th>vehicle breakdowns</th><td>{len(logs['priority'].breakdowns)}</td>"
        f"<td>{len(logs['fifo'].breakdowns)}</td></tr>"
    )
    return (
        "<h2>How requests were answered</h2><table><tr><th></th><th>priority</th><th>FCFS</th></tr>"
        f"{answers}</table><h2>What went wrong</h2><table><tr><th>failed deliveries, by reason</th>"
        f"<th>priority</th><th>FCFS</th></tr>{failures}{breakdowns}</table>"
    )


def write_report(out: Path, summary: dict[str, Any], logs: dict[str, SimLog]) -> Path:
    """Write ``out/index.html`` and return its path."""
    reconciled = "yes" if summary["ledger_reconciled"] else "NO"
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
<p class="note">Synthetic Shanghai at scale {summary["scale"]} (seed {summary["seed"]}):
{summary["city"]["households"]:,} households in {summary["city"]["communities"]} communities,
{summary["city"]["warehouses"]} warehouses. {summary["days"]} simulated days, the same city, stock
and events under two policies. Ledger reconciled (every balance, every donor):
<b>{reconciled}</b>.</p>
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
