"""Hand-checkable cases for the allocation engine and the FCFS baseline."""

from __future__ import annotations

import numpy as np
import pytest

from relieflink.optim.allocation import (
    LIMIT_CAPACITY,
    LIMIT_NONE,
    LIMIT_STOCK,
    AllocationParams,
    check_allocation,
    evaluate,
    haversine_matrix,
    solve_allocation,
    solve_fcfs,
    weighted_gini,
)

from .helpers import make_problem


def alloc(problem, **kw):  # type: ignore[no-untyped-def]
    params = AllocationParams(**kw) if kw else None
    result = solve_allocation(problem, params=params)
    assert check_allocation(problem, result) == []
    assert result.is_feasible(problem)
    return result


def test_equal_weights_round_robin_and_tie_break_by_line_order() -> None:
    # Keys 0,1,2 per line; 5 units = three at level 0, two at level 1 -> lines 0 and 1.
    p = make_problem(quantity=[3, 3, 3], stock=[[5]], location=[1, 0, 1])
    r = alloc(p)
    assert r.allocated.tolist() == [2, 2, 1]
    assert r.unmet.tolist() == [1, 1, 2]
    assert r.limit.tolist() == [LIMIT_STOCK] * 3
    assert r.group_level[3, 0] == 1.0


def test_nobody_gets_a_second_pack_while_someone_has_none() -> None:
    p = make_problem(quantity=[5, 5, 5, 5], stock=[[3]], weight=[4, 1, 1, 1])
    r = alloc(p)
    assert r.allocated.max() == 1
    assert r.allocated.sum() == 3
    # scarce first units go by score, then arrival, then line order (not by weight)
    assert r.allocated.tolist() == [1, 1, 1, 0]


def test_scarce_first_units_go_to_the_higher_score_then_the_earlier_arrival() -> None:
    # 5 family kits; 20 single people aged 80+ (score 35, asked first) and a household of 3
    # with an infant and a pregnant woman (score 70, asked last): the family gets a kit
    q = [1] * 21
    p = make_problem(
        quantity=q,
        stock=[[5]],
        weight=[1.0] * 20 + [3.0],
        arrival=list(range(21)),
        score=[35] * 20 + [70],
    )
    r = alloc(p)
    assert r.allocated[20] == 1
    assert r.allocated[:4].tolist() == [1, 1, 1, 1]  # then the earliest of the others
    assert r.allocated.sum() == 5
    # with enough for everyone's first unit, later units follow max-min fairness
    p = make_problem(quantity=[2] * 3, stock=[[4]], weight=[1.0, 1.0, 3.0], score=[0, 0, 70])
    assert alloc(p).allocated.tolist() == [1, 1, 2]  # the family of three is lowest per person


def test_weighted_levels() -> None:
    # A (w=1) keys 0,1,2,...; B (w=3) keys 0,1/3,2/3,1,...
    p = make_problem(quantity=[9, 9], stock=[[2]], weight=[1, 3])
    assert alloc(p).allocated.tolist() == [1, 1]
    p = make_problem(quantity=[9, 9], stock=[[4]], weight=[1, 3])
    assert alloc(p).allocated.tolist() == [1, 3]
    # 5th unit: A's key 1 ties with B's key 3/3; smaller weight (A) first
    p = make_problem(quantity=[9, 9], stock=[[5]], weight=[1, 3])
    assert alloc(p).allocated.tolist() == [2, 3]
    p = make_problem(quantity=[9, 9], stock=[[6]], weight=[1, 3])
    assert alloc(p).allocated.tolist() == [2, 4]


def test_saturated_lines_release_stock_to_others() -> None:
    p = make_problem(quantity=[1, 10, 10], stock=[[9]])
    r = alloc(p)
    assert r.allocated.tolist() == [1, 4, 4]
    assert r.group_level[3, 0] == 1.0  # min level over lines


def test_enough_stock_serves_everyone() -> None:
    p = make_problem(quantity=[2, 0, 3], stock=[[4], [10]])
    r = alloc(p)
    assert r.allocated.tolist() == [2, 0, 3]
    assert r.limit.tolist() == [LIMIT_NONE] * 3
    # location 0 needs 5: warehouse 0 (nearest) ships 4, line 2 gets its last unit from 1
    assert r.source.tolist() == [0, -1, 0]
    assert r.split_line.tolist() == [2, 2]
    assert r.split_units.tolist() == [2, 1]
    assert r.shipped[:, 0].tolist() == [4, 1]


def test_strict_priority_across_classes() -> None:
    p = make_problem(quantity=[3, 3, 3, 3], priority=[3, 0, 1, 0], stock=[[7]])
    r = alloc(p)
    assert r.allocated.tolist() == [0, 3, 1, 3]
    assert r.class_allocated.tolist() == [6, 1, 0, 0]
    assert r.class_coverage[0] == 1.0


def test_min_ration_when_stock_allows() -> None:
    q = [4, 4, 4]
    r = alloc(make_problem(quantity=q, min_ration=[2, 2, 2], stock=[[6]], weight=[1, 1, 5]))
    assert r.allocated.tolist() == [2, 2, 2]
    assert r.group_min_ration[3, 0]
    # without the ration the weight-5 household would take more
    r2 = alloc(
        make_problem(quantity=q, min_ration=[2, 2, 2], stock=[[6]], weight=[1, 1, 5]),
        use_min_ration=False,
    )
    assert r2.allocated.tolist() == [1, 1, 4]
    # not enough for everybody's ration: plain water-filling
    r3 = alloc(make_problem(quantity=q, min_ration=[2, 2, 2], stock=[[5]]))
    assert r3.allocated.tolist() == [2, 2, 1]
    assert not r3.group_min_ration[3, 0]
    # ration above the request is capped at the request
    r4 = alloc(make_problem(quantity=[1, 4], min_ration=[3, 3], stock=[[4]], weight=[1, 9]))
    assert r4.allocated.tolist() == [1, 3]


def test_nearest_warehouse_then_next_and_split() -> None:
    # two locations; location 0 is nearer warehouse 1, location 1 nearer warehouse 0
    dist = [[500.0, 100.0], [100.0, 900.0]]
    p = make_problem(
        quantity=[3, 2, 1],
        location=[0, 0, 1],
        stock=[[10], [4]],
        distance=dist,
    )
    r = alloc(p)
    assert r.allocated.tolist() == [3, 2, 1]
    # location 0 needs 5, warehouse 1 has 4: line 0 (first) ships from 1, line 1 is split
    assert r.source.tolist() == [1, 1, 0]
    assert r.split_line.tolist() == [1, 1]
    assert r.split_warehouse.tolist() == [1, 0]
    assert r.split_units.tolist() == [1, 1]
    lines, wh, units = r.shipments()
    assert sorted(zip(lines.tolist(), wh.tolist(), units.tolist(), strict=True)) == [
        (0, 1, 3),
        (1, 0, 1),
        (1, 1, 1),
        (2, 0, 1),
    ]


def test_checker_catches_violations() -> None:
    from dataclasses import replace

    p = make_problem(quantity=[2, 2], stock=[[3]], capacity=[3])
    r = alloc(p)
    too_much = replace(r, allocated=np.array([2, 2], dtype=np.int32))
    assert any("shipments" in e for e in check_allocation(p, too_much))
    over = replace(
        r,
        allocated=np.array([2, 2], dtype=np.int32),
        unmet=np.array([0, 0], dtype=np.int32),
        source=np.array([0, 0], dtype=np.int32),
        split_line=np.zeros(0, dtype=np.int64),
    )
    errs = check_allocation(p, over)
    assert any("ships 4 of item 0, stock 3" in e for e in errs)
    assert any("over capacity" in e for e in errs)
    assert not over.is_feasible(p)


def test_capacity_limits_and_is_reported() -> None:
    # warehouse 0 holds 10 but can ship only 4 kg; item weighs 2 kg -> 2 units
    p = make_problem(quantity=[2, 2], stock=[[10]], capacity=[4], unit_weight=[2])
    r = alloc(p)
    assert r.allocated.tolist() == [1, 1]
    assert r.limit.tolist() == [LIMIT_CAPACITY, LIMIT_CAPACITY]
    assert r.capacity_remaining is not None
    assert r.capacity_remaining.tolist() == [0]
    assert r.stock_remaining.tolist() == [[8]]
    # 2 units short, and stock was there: the capacity held them back (not all 8 left).
    assert r.held_back.tolist() == [[2]]


def test_held_back_counts_only_what_capacity_kept_in() -> None:
    # Two warehouses, 3 units each, 2 kg/day each at 1 kg a unit: 4 ship, 2 stay in stock.
    # 9 asked: 2 short for capacity (held back, the fuller warehouse counted first), 3 for stock.
    p = make_problem(quantity=[9], stock=[[3], [3]], capacity=[2, 2], unit_weight=[1], location=[0])
    r = alloc(p)
    assert r.allocated.tolist() == [4]
    assert int(r.held_back.sum()) == 2
    assert r.held_back.tolist() == [[1], [1]]
    # Short of stock only: nothing held back.
    assert alloc(make_problem(quantity=[5], stock=[[3]])).held_back.tolist() == [[0]]


def test_capacity_shared_across_items_in_item_order() -> None:
    p = make_problem(quantity=[3, 3], item=[0, 1], stock=[[5, 5]], capacity=[4], unit_weight=[1, 1])
    assert alloc(p).allocated.tolist() == [3, 1]
    assert alloc(p, item_order=[1, 0]).allocated.tolist() == [1, 3]


def test_fcfs_serves_by_arrival_ignoring_class() -> None:
    p = make_problem(quantity=[2, 2, 2], priority=[0, 3, 3], arrival=[30, 10, 20], stock=[[3]])
    r = solve_fcfs(p)
    assert check_allocation(p, r) == []
    assert r.method == "fcfs"
    assert r.allocated.tolist() == [0, 2, 1]
    assert alloc(p).allocated.tolist() == [2, 1, 0]


def test_outcome_measures() -> None:
    p = make_problem(
        quantity=[2, 2, 2, 2],
        item=[0, 0, 1, 1],
        priority=[0, 0, 3, 3],
        region=[0, 1, 1, 1],
        stock=[[4, 1]],
    )
    r = alloc(p)
    out = evaluate(p, r)
    assert out.class_coverage.tolist() == [1.0, 1.0, 1.0, 0.25]
    assert out.unmet_by_item.tolist() == [0, 3]
    assert out.unmet_by_region is not None
    assert out.unmet_by_region.tolist() == [0, 3]
    assert out.gini[0] == 0.0
    assert out.gini[3] == pytest.approx(0.5)  # one of two equal households has everything
    assert out.mean_distance_m == 1000.0
    assert "medical" in r.summary()
    assert "gini" in out.summary()


def test_weighted_gini_known_values() -> None:
    assert weighted_gini(np.array([1.0, 1.0, 1.0]), np.ones(3)) == pytest.approx(0.0)
    assert weighted_gini(np.array([0.0, 0.0, 0.0, 1.0]), np.ones(4)) == pytest.approx(0.75)
    # a weight of 3 is the same as three people with the same value
    assert weighted_gini(np.array([0.0, 2.0]), np.array([3.0, 1.0])) == pytest.approx(
        weighted_gini(np.array([0.0, 0.0, 0.0, 2.0]), np.ones(4))
    )
    assert weighted_gini(np.zeros(3), np.ones(3)) == 0.0


def test_haversine_known_distance() -> None:
    # one degree of latitude ~ 111.2 km; Beijing-Shanghai ~ 1067 km
    d = haversine_matrix(
        np.array([0.0, 39.9042]),
        np.array([0.0, 116.4074]),
        np.array([1.0, 31.2304]),
        np.array([0.0, 121.4737]),
    )
    assert d[0, 0] == pytest.approx(111_195, rel=1e-3)
    assert d[1, 1] == pytest.approx(1_067_000, rel=0.01)


def test_default_geometry_uses_haversine() -> None:
    from relieflink.optim.allocation import AllocationProblem, Demands, Locations, Warehouses

    p = AllocationProblem(
        demands=Demands(
            item=np.array([0]),
            quantity=np.array([2]),
            priority=np.array([1]),
            weight=np.array([1.0]),
            location=np.array([0]),
        ),
        warehouses=Warehouses(lat=np.array([31.0, 31.5]), lon=np.array([121.0, 121.5])),
        locations=Locations(lat=np.array([31.45]), lon=np.array([121.45])),
        stock=np.array([[5], [5]]),
    )
    r = alloc(p)
    assert r.source.tolist() == [1]


def test_empty_problem() -> None:
    p = make_problem(quantity=[], stock=[[3]], n_locations=1)
    r = alloc(p)
    assert r.allocated.shape == (0,)
    assert r.class_coverage.tolist() == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stock": [[-1]]}, "stock"),
        ({"priority": [4, 0]}, "unknown class"),
        ({"priority": [-1, 0]}, "unknown class"),
        ({"weight": [1.0, 0.0]}, "weight"),
        ({"weight": [1.0, float("nan")]}, "weight"),
        ({"item": [0, 1]}, "demands.item"),
        ({"location": [0, 5], "n_locations": 2, "distance": [[1.0], [1.0]]}, "location"),
        ({"min_ration": [0, -1]}, "min_ration"),
        ({"region": [0, 1, 2]}, "shape"),
        ({"capacity": [-3]}, "capacity"),
        ({"unit_weight": [1, 1]}, "unit_weight"),
        ({"distance": [[1.0, 2.0]]}, "distance"),
    ],
)
def test_bad_input_raises_value_error(change: dict[str, object], message: str) -> None:
    kw: dict[str, object] = {"quantity": [1, 1], "stock": [[3]]}
    kw.update(change)
    with pytest.raises(ValueError, match=message):
        solve_allocation(make_problem(**kw))  # type: ignore[arg-type]


def test_non_integer_quantity_rejected() -> None:
    p = make_problem(quantity=[1, 1], stock=[[3]])
    bad = type(p.demands)(**{**_fields(p.demands), "quantity": np.array([1.5, 1.0])})
    with pytest.raises(ValueError, match="integers"):
        solve_allocation(type(p)(**{**_fields(p), "demands": bad}))


def test_bad_item_order_rejected() -> None:
    p = make_problem(quantity=[1], stock=[[3, 3]])
    with pytest.raises(ValueError, match="item_order"):
        solve_allocation(p, params=AllocationParams(item_order=[0, 0]))


def _fields(obj: object) -> dict[str, object]:
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}  # type: ignore[attr-defined]


def test_line_order_by_location_or_not_gives_same_groups() -> None:
    # the same lines, once ordered by location (fast path) and once not (general sort)
    q = [2, 1, 3, 2, 2, 1]
    loc = [0, 0, 1, 1, 2, 2]
    dist = [[100.0, 900.0], [800.0, 100.0], [500.0, 400.0]]
    p1 = make_problem(quantity=q, location=loc, stock=[[4], [3]], distance=dist)
    perm = [5, 2, 0, 4, 1, 3]
    p2 = make_problem(
        quantity=[q[i] for i in perm],
        location=[loc[i] for i in perm],
        stock=[[4], [3]],
        distance=dist,
    )
    r1, r2 = alloc(p1), alloc(p2)
    # per-location totals and warehouse loads do not depend on line order
    np.testing.assert_array_equal(r1.shipped, r2.shipped)
    per_loc1 = np.bincount(loc, weights=r1.allocated, minlength=3)
    per_loc2 = np.bincount([loc[i] for i in perm], weights=r2.allocated, minlength=3)
    assert per_loc1.sum() == per_loc2.sum() == 7
    # everyone gets 1; the 7th unit is an exact tie (weights 1) broken by line index
    assert r1.allocated.tolist() == [2, 1, 1, 1, 1, 1]
    assert r2.allocated.tolist() == [1, 2, 1, 1, 1, 1]  # the first line asking for > 1
