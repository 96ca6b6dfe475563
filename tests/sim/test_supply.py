"""Donations are placed by the need they serve: each kit's supply goes to its own donors by
their shares, and to the depots in proportion to the need of the compounds nearest them."""

from __future__ import annotations

from collections import Counter

from relieflink.scenario import figures as fg
from relieflink.sim.supply import place_by_need
from relieflink.sim.world import REFILL_SKU

GRAIN = {1: 0.6, 2: 0.4}  # donor id → share
DAIRY = {3: 0.7, 4: 0.3}
PHARMA = {5: 1.0}
DONORS = {"KIT-FAMILY-FOOD": GRAIN, "KIT-INFANT": DAIRY, REFILL_SKU: PHARMA}


def _placed(lines: dict[tuple[int, str], list[tuple[str, int]]]) -> dict[str, Counter[object]]:
    out: dict[str, Counter[object]] = {}
    for (donor, depot), items in lines.items():
        for sku, q in items:
            out.setdefault(sku, Counter())[donor, depot] += q
    return out


def test_each_kit_goes_to_the_depots_by_their_need_from_its_own_donors() -> None:
    need = {
        "north": {"KIT-FAMILY-FOOD": 300.0, "KIT-INFANT": 0.0, REFILL_SKU: 2.2},
        "south": {"KIT-FAMILY-FOOD": 100.0, "KIT-INFANT": 40.0, REFILL_SKU: 0.4},
    }
    placed = _placed(place_by_need(need, DONORS, supply_ratio=0.7))
    food, infant, refills = placed["KIT-FAMILY-FOOD"], placed["KIT-INFANT"], placed[REFILL_SKU]
    assert sum(food.values()) == round(400 * 0.7)  # need × ratio
    assert sum(infant.values()) == round(40 * 0.7)
    assert sum(refills.values()) == 3  # refills in full (rounded up)
    # by donor: their shares (largest remainder)
    assert {d for d, _ in food} == {1, 2} and {d for d, _ in infant} == {3, 4}
    assert sum(q for (d, _), q in food.items() if d == 1) == round(280 * 0.6)
    # by depot: its need; no infant kit where no infant lives
    north = sum(q for (_, w), q in food.items() if w == "north")
    assert abs(north - 280 * 0.75) <= 2
    assert all(w == "south" for _, w in infant)


def test_the_figures_give_each_simulated_kit_to_donors_whose_shares_add_up() -> None:
    for sku in ("KIT-FAMILY-FOOD", "KIT-INFANT", "KIT-MATERNITY", "KIT-CHRONIC-MED", REFILL_SKU):
        shares = fg.donor_shares(sku)
        assert shares and abs(sum(shares.values()) - 1) < 1e-9, sku
    assert set(fg.donor_shares("KIT-FAMILY-FOOD")) == set(fg.GRAIN_COMPANIES)


def test_a_kit_given_its_own_ratio_is_donated_at_it_and_the_others_at_the_supply_ratio() -> None:
    need = {"north": {"KIT-FAMILY-FOOD": 300.0, "KIT-INFANT": 50.0, REFILL_SKU: 1.0}}
    placed = _placed(place_by_need(need, DONORS, 0.7, {"KIT-INFANT": 1.0}))
    assert sum(placed["KIT-FAMILY-FOOD"].values()) == round(300 * 0.7)
    assert sum(placed["KIT-INFANT"].values()) == 50
    assert sum(placed[REFILL_SKU].values()) == 1
