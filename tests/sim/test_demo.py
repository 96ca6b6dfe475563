from __future__ import annotations

import json
import re
from pathlib import Path

from relieflink.sim.demo import run_demo

GROUP_KEYS = {"median_hours_to_delivery", "p95_hours_to_delivery", "served_within_24h"}


def test_the_demo_writes_the_summary_and_an_offline_report(tmp_path: Path) -> None:
    result = run_demo(out=tmp_path, seed=5, scale=0.0001, days=1)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    for policy in ("priority", "fifo"):
        figures = summary[policy]
        assert {"requests", "delivered_packs", "unmet_packs"} <= figures.keys()
        assert set(figures["groups"]) == {"infant", "pregnant", "chronic", "elderly", "other"}
        for group in figures["groups"].values():
            assert group.keys() >= GROUP_KEYS
        assert figures["reconciliation"]["ok"] is True
        # Routes come from the dispatch service's plans and were driven by its couriers.
        assert figures["dispatch_plans"] >= 1 and figures["routes_driven"] >= 1
        assert figures["route_km"] > 0 and figures["cost_per_delivered_pack_fen"] > 0
        assert len(result.logs[policy].routes) == figures["routes_driven"]
    assert summary["ledger_reconciled"] is True
    page = (tmp_path / "index.html").read_text()
    assert "<svg" in page
    assert re.search(r'(src|href)="https?://', page) is None  # nothing fetched from a network
