"""``top_n`` against a full stable sort of every row, on blocks with ties, infinities and nan.

Wide blocks take the bounded-candidate path, heavily tied rows and small blocks the exact
partition; both must give the reference's answer bit for bit.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recsys.models.base import top_n

examples = settings(max_examples=150, deadline=None)


def reference(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row fully sorted by (score descending, column), nan last; the first ``n`` kept,
    non-finite scores as id -1 / score -inf, padded to ``n``."""
    scores = np.asarray(scores, dtype=np.float32)
    batch, n_items = scores.shape
    columns = np.broadcast_to(np.arange(n_items), scores.shape)
    order = np.lexsort((columns, -scores), axis=1)[:, :n]
    ids = np.full((batch, n), -1, np.int32)
    top = np.full((batch, n), -np.inf, np.float32)
    k = order.shape[1]
    ids[:, :k] = order
    top[:, :k] = np.take_along_axis(scores, order, axis=1)
    ids[~np.isfinite(top)] = -1
    top[ids < 0] = -np.inf
    return ids, top


def assert_same(scores: np.ndarray, n: int) -> None:
    got = top_n(scores, n)
    ids, top = reference(scores, n)
    assert got.ids.dtype == np.int32 and got.scores.dtype == np.float32
    np.testing.assert_array_equal(got.ids, ids)
    np.testing.assert_array_equal(got.scores.view(np.uint32), top.view(np.uint32))  # -0.0 too


@st.composite
def blocks(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """A score block (tiny or wide, C, Fortran or column-sliced, float32 or float64) and n."""
    if draw(st.booleans()):
        batch, n_items = draw(st.integers(1, 40)), draw(st.integers(256, 2500))
    else:
        batch, n_items = draw(st.integers(1, 12)), draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = draw(st.sampled_from(["normal", "few", "counts"]))
    if values == "normal":
        scores = rng.standard_normal((batch, n_items)).astype(np.float32)
    elif values == "few":  # float32 duplicates everywhere, signed zeros among them
        pool = np.array([-0.0, 0.0, 0.5, 1 / 3, 1e-30, -2.0, 7.0], np.float32)
        scores = rng.choice(pool[: draw(st.integers(1, len(pool)))], (batch, n_items))
    else:
        scores = rng.integers(0, draw(st.integers(1, 50)), (batch, n_items)).astype(np.float32)
    for special in (-np.inf, np.inf, np.nan):
        share = draw(st.sampled_from([0.0, 0.0, 0.001, 0.05, 0.5, 0.97, 1.0]))
        scores[rng.random((batch, n_items)) < share] = special
        if draw(st.booleans()):
            scores[rng.integers(batch)] = special  # a whole row
    n = draw(st.one_of(st.integers(0, 20), st.just(n_items), st.integers(n_items, n_items + 5)))
    layout = draw(st.sampled_from(["C", "F", "slice"]))
    if layout == "F":
        scores = np.asfortranarray(scores)
    elif layout == "slice":
        scores = np.pad(scores, ((0, 0), (3, 2)))[:, 3:-2]
    if draw(st.booleans()):
        scores = scores.astype(np.float64)
    return scores, n


@examples
@given(blocks())
def test_top_n_matches_full_sort(case: tuple[np.ndarray, int]) -> None:
    assert_same(*case)


tiny_values = st.sampled_from([-np.inf, np.inf, np.nan, -0.0, 0.0, 1.0, 2.0, -1.5])


@examples
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=8),
                  elements=tiny_values), st.integers(0, 10))
def test_top_n_tiny_blocks(scores: np.ndarray, n: int) -> None:
    assert_same(scores, n)


def test_top_n_of_a_block_with_both_kinds_of_rows() -> None:
    """Wide rows, ranked from bounded candidates, in one block with tied rows, which fall
    back to the partition."""
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((64, 2000)).astype(np.float32)
    scores[:8] = 1.0  # every cell tied
    scores[8:16] = -np.inf
    scores[16, ::3] = np.nan
    for n in (1, 10, 200):
        assert_same(scores, n)


def test_top_n_empty() -> None:
    for shape, n in (((0, 5), 3), ((4, 0), 3), ((4, 5), 0), ((0, 0), 0)):
        got = top_n(np.zeros(shape, np.float32), n)
        assert got.ids.shape == got.scores.shape == (shape[0], n)
        assert got.ids.dtype == np.int32 and got.scores.dtype == np.float32
