from __future__ import annotations

import numpy as np
import pytest

from relieflink.optim.geo import (
    EuclideanProvider,
    ExplicitMatrixProvider,
    HaversineProvider,
    haversine_m,
    load_matrix_file,
)


def test_haversine_one_degree_of_latitude() -> None:
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_195, rel=1e-3)


def test_haversine_provider_applies_circuity_and_is_symmetric() -> None:
    p = HaversineProvider([31.0, 31.01, 31.02], [121.0, 121.0, 121.01], circuity=1.5)
    idx = np.arange(3)
    d = p.distances(idx, idx)
    assert d.dtype == np.int64
    assert (d == d.T).all()
    assert d[0, 1] == round(1.5 * float(haversine_m(31.0, 121.0, 31.01, 121.0)))
    assert p.durations(idx, idx, "truck") is None


def test_euclidean_rounding_conventions() -> None:
    idx = np.arange(2)
    xs, ys = [0.0, 1.0], [0.0, 1.0]  # distance sqrt(2) = 1.41421...
    assert EuclideanProvider(xs, ys, "round").distances(idx, idx)[0, 1] == 1
    assert EuclideanProvider(xs, ys, "dimacs").distances(idx, idx)[0, 1] == 14
    assert EuclideanProvider(xs, ys, "exact").distances(idx, idx)[0, 1] == 1414


def test_explicit_matrix_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "table.json"
    path.write_text('{"distances": [[0, 5], [7, 0]], "durations": {"van": [[0, 2], [3, 0]]}}')
    p = load_matrix_file(path)
    assert isinstance(p, ExplicitMatrixProvider)
    assert p.distances(np.array([1]), np.array([0]))[0, 0] == 7
    dur = p.durations(np.array([0]), np.array([1]), "van")
    assert dur is not None and dur[0, 0] == 2
    assert p.durations(np.array([0]), np.array([1]), "robot") is None
    with pytest.raises(ValueError, match="square"):
        ExplicitMatrixProvider([[0, 1]])
