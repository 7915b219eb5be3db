"""Metrics against brute-force pure-Python definitions, hand-computed cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from recsys.evaluation import metrics as M
from tests.strategies import RankingCase, item_vectors, popularity, ranking_cases

# Local settings (not a global profile, which would change other files' tests too).
examples = settings(max_examples=150, deadline=None)


# -- brute force, one row at a time, straight from the textbook definitions ----------------
def _top(lst: list[int], k: int) -> list[int]:
    return (lst + [-1] * k)[:k]


def bf_row(lst: list[int], rel: set[int], k: int) -> dict[str, float]:
    top = _top(lst, k)
    h = [1 if i in rel else 0 for i in top]
    d = min(k, len(rel))
    dcg = sum(h[j] / math.log2(j + 2) for j in range(k))
    idcg = sum(1 / math.log2(j + 2) for j in range(d))
    ap = sum(sum(h[: j + 1]) / (j + 1) for j in range(k) if h[j]) / d
    first = next((j + 1 for j in range(k) if h[j]), None)
    return {"precision": sum(h) / k, "recall": sum(h) / d, "ndcg": dcg / idcg, "map": ap,
            "hit_rate": float(any(h)), "mrr": 1 / first if first else 0.0}


def bf_means(case: RankingCase, k: int) -> dict[str, float]:
    rows = [bf_row(lst, rel, k) for lst, rel in zip(case.lists, case.sets, strict=True) if rel]
    return {m: (sum(r[m] for r in rows) / len(rows) if rows else math.nan)
            for m in M.RANKING_METRICS}


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# -- ranking metrics -------------------------------------------------------------------------
FUNCS = {"precision": M.precision_at_k, "recall": M.recall_at_k, "ndcg": M.ndcg_at_k,
         "map": M.map_at_k, "hit_rate": M.hit_rate_at_k, "mrr": M.mrr_at_k}


@pytest.mark.parametrize("name", sorted(FUNCS))
@examples
@given(case=ranking_cases())
def test_metric_matches_brute_force(name: str, case: RankingCase) -> None:
    expected = bf_means(case, case.k)[name]
    assert close(FUNCS[name](case.ids, case.relevant, case.k), expected)


@examples
@given(case=ranking_cases())
def test_ranking_metrics_counts_only_rows_with_relevant_items(case: RankingCase) -> None:
    out = M.ranking_metrics(case.ids, case.relevant, case.k)
    assert out["users"] == sum(1 for s in case.sets if s)
    for name, value in bf_means(case, case.k).items():
        assert close(out[f"{name}@{case.k}"], value)


@examples
@given(case=ranking_cases())
def test_metrics_lie_in_unit_interval(case: RankingCase) -> None:
    rows = M.per_user(case.ids, case.relevant, case.k)
    for values in rows.values():
        v = values[~np.isnan(values)]
        assert ((v >= 0) & (v <= 1 + 1e-12)).all()


@examples
@given(case=ranking_cases())
def test_perfect_ranking_scores_one(case: RankingCase) -> None:
    # Put each row's relevant items first (any order), the rest after.
    perfect = np.full((len(case.sets), case.n_items), -1, np.int32)
    for row, rel in enumerate(case.sets):
        order = sorted(rel) + [i for i in range(case.n_items) if i not in rel]
        perfect[row] = order
    rows = M.per_user(perfect, case.relevant, case.k)
    has = np.array([bool(s) for s in case.sets])
    for name in ("recall", "ndcg", "map", "hit_rate", "mrr"):
        np.testing.assert_allclose(rows[name][has], 1.0)
    expected_p = np.array([min(case.k, len(s)) / case.k for s in case.sets])
    np.testing.assert_allclose(rows["precision"][has], expected_p[has])


@examples
@given(case=ranking_cases(), extra=st.integers(1, 5))
def test_invariant_to_trailing_padding(case: RankingCase, extra: int) -> None:
    padded = np.pad(case.ids, ((0, 0), (0, extra)), constant_values=-1)
    a = M.ranking_metrics(case.ids, case.relevant, case.k)
    b = M.ranking_metrics(padded, case.relevant, case.k)
    assert all(close(a[key], b[key]) for key in a)


@examples
@given(case=ranking_cases(), seed=st.integers(0, 2**31 - 1))
def test_invariant_to_user_order(case: RankingCase, seed: int) -> None:
    perm = np.random.default_rng(seed).permutation(len(case.sets))
    a = M.ranking_metrics(case.ids, case.relevant, case.k)
    b = M.ranking_metrics(case.ids[perm], case.relevant[perm], case.k)
    assert all(close(a[key], b[key]) for key in a)


def test_hand_computed_example() -> None:
    # Row 0: relevant {1, 3}; ranked [1, 2, 3] -> hits at ranks 1 and 3.
    # Row 1: relevant {0}; ranked [2, -1, -1] -> no hit. Row 2: nothing relevant -> excluded.
    ids = np.array([[1, 2, 3], [2, -1, -1], [0, 1, 2]], np.int32)
    rel = sparse.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], np.float32))
    out = M.ranking_metrics(ids, rel, 3)
    assert out["users"] == 2
    assert out["precision@3"] == pytest.approx((2 / 3 + 0) / 2)
    assert out["recall@3"] == pytest.approx((1 + 0) / 2)
    ndcg0 = (1 + 1 / 2) / (1 + 1 / math.log2(3))
    assert out["ndcg@3"] == pytest.approx(ndcg0 / 2)
    assert out["map@3"] == pytest.approx(((1 + 2 / 3) / 2) / 2)
    assert out["hit_rate@3"] == pytest.approx(0.5)
    assert out["mrr@3"] == pytest.approx(0.5)


def test_bad_inputs_are_named() -> None:
    rel = sparse.csr_matrix((1, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="repeat an item"):
        M.ndcg_at_k(np.array([[1, 1]]), rel, 2)
    with pytest.raises(ValueError, match="one relevance row"):
        M.ndcg_at_k(np.array([[1], [2]]), rel, 1)
    with pytest.raises(ValueError, match="n_items"):
        M.ndcg_at_k(np.array([[7]]), rel, 1)
    with pytest.raises(ValueError, match="k must be"):
        M.ndcg_at_k(np.array([[1]]), rel, 0)
    with pytest.raises(TypeError, match="integer"):
        M.ndcg_at_k(np.array([[1.0]]), rel, 1)


# -- beyond accuracy -------------------------------------------------------------------------
@examples
@given(case=ranking_cases())
def test_coverage_matches_brute_force(case: RankingCase) -> None:
    seen = {i for lst in case.lists for i in _top(lst, case.k) if i >= 0}
    assert close(M.catalog_coverage(case.ids, case.n_items, case.k), len(seen) / case.n_items)


def _bf_list_mean(case: RankingCase, value: list[float]) -> float:
    means = [sum(value[i] for i in t) / len(t)
             for t in ([i for i in _top(lst, case.k) if i >= 0] for lst in case.lists) if t]
    return sum(means) / len(means) if means else math.nan


@examples
@given(data=st.data())
def test_novelty_matches_brute_force(data: st.DataObject) -> None:
    case = data.draw(ranking_cases())
    pop = data.draw(popularity(case.n_items))
    n_users = int(pop.max(initial=0)) + data.draw(st.integers(0, 5))
    info = [-math.log2((c + 1) / (n_users + 1)) for c in pop.tolist()]
    assert close(M.novelty(case.ids, pop, n_users, case.k), _bf_list_mean(case, info))


@examples
@given(data=st.data())
def test_diversity_matches_brute_force(data: st.DataObject) -> None:
    case = data.draw(ranking_cases())
    vec = data.draw(item_vectors(case.n_items))

    def norm(a: int) -> float:
        return math.sqrt(sum(x * x for x in vec[a]))

    def cos(a: int, b: int) -> float:
        return sum(x * y for x, y in zip(vec[a], vec[b], strict=True)) / (norm(a) * norm(b))

    per_list = []
    for lst in case.lists:
        t = [i for i in _top(lst, case.k) if i >= 0 and norm(i) > 0]
        pairs = [(a, b) for a in t for b in t if a != b]
        if pairs:
            per_list.append(1 - sum(cos(a, b) for a, b in pairs) / len(pairs))
    expected = sum(per_list) / len(per_list) if per_list else math.nan
    got = M.intra_list_diversity(case.ids, vec, case.k)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-9)
    got_sparse = M.intra_list_diversity(case.ids, sparse.csr_matrix(vec), case.k)
    assert (math.isnan(got_sparse) and math.isnan(expected)) or \
        got_sparse == pytest.approx(expected, abs=1e-9)


@examples
@given(data=st.data())
def test_popularity_bias_matches_brute_force(data: st.DataObject) -> None:
    case = data.draw(ranking_cases())
    pop = data.draw(popularity(case.n_items)).tolist()
    n = len(pop)
    pct = [(sum(p < c for p in pop) + 0.5 * sum(p == c for p in pop)) / n for c in pop]
    mean_pct, curve = M.popularity_bias(case.ids, np.array(pop), case.k, bins=4)
    assert close(mean_pct, _bf_list_mean(case, pct))
    recommended = [i for lst in case.lists for i in _top(lst, case.k) if i >= 0]
    bin_of = [min(int(p * 4), 3) for p in pct]
    expected_rec = [sum(bin_of[i] == b for i in recommended) / max(len(recommended), 1)
                    for b in range(4)]
    np.testing.assert_allclose(curve.recommended, expected_rec)
    total = max(sum(pop), 1)
    np.testing.assert_allclose(curve.train, [sum(pop[i] for i in range(n) if bin_of[i] == b)
                                             / total for b in range(4)])


def test_diversity_of_one_hot_categories_counts_cross_category_pairs() -> None:
    # Items 0,1 in category A, item 2 in B, item 3 unknown: [0, 1, 2, 3] has 2 of 3 pairs
    # across categories (item 3 is left out); [3, 0] has one item with a vector: no list.
    cats = sparse.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [0, 0]], np.float32))
    assert M.intra_list_diversity(np.array([[0, 1, 2, 3]]), cats, 4) == pytest.approx(2 / 3)
    assert math.isnan(M.intra_list_diversity(np.array([[3, 0]]), cats, 2))
