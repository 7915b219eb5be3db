"""GET /v1/customers/{id}/recommendations, /v1/products/{id}/similar, /v1/popular, cart."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recsys.bundle import read_bundle
from recsys.policy.pipeline import Engine
from serving.main import create_app
from tests.serving.conftest import HEADERS, known_customers, product_ids, settings_for

ATTRIBUTION = {"model_version", "variant", "request_id"}


def get(client: TestClient, url: str, **params: object) -> dict:
    response = client.get(url, params=params, headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


def test_known_customer_gets_personalized_items_with_reasons(client: TestClient,
                                                             als_bundle: Path) -> None:
    customer = known_customers(als_bundle)[0]
    body = get(client, f"/v1/customers/{customer}/recommendations", n=5)
    assert ATTRIBUTION <= body.keys() and body["variant"] == "champion"
    assert body["personalized"] is True and body["fallback"] is None
    assert len(body["items"]) == 5
    assert all(isinstance(i["product_id"], str) and i["reason"] and isinstance(i["score"], float)
               for i in body["items"])
    engine = Engine(read_bundle(als_bundle))
    expected = engine.recommend(customer, 5).picks
    assert [i["product_id"] for i in body["items"]] == [p.product_id for p in expected]


def test_unknown_customer_gets_cold_start_not_404(client: TestClient) -> None:
    body = get(client, "/v1/customers/never-seen-42/recommendations", n=4)
    assert body["personalized"] is False and body["fallback"] == "cold_start"
    assert len(body["items"]) == 4
    assert {i["reason_code"] for i in body["items"]} <= {"popular", "trending"}


def test_filters_restrict_category_and_price(client: TestClient, als_bundle: Path) -> None:
    bundle = read_bundle(als_bundle)
    products = bundle.products.set_index("product_id")
    category = str(products["category"].iloc[0]).split(" > ")[0]
    customer = known_customers(als_bundle)[1]
    body = get(client, f"/v1/customers/{customer}/recommendations", n=5, category=category,
               max_price=float(products["price"].median()))
    assert body["items"]
    for item in body["items"]:
        row = products.loc[item["product_id"]]
        assert str(row["category"]).startswith(category)
        assert row["price"] <= products["price"].median()


@pytest.mark.parametrize("model", ["als", "hybrid"])
def test_a_filter_nothing_matches_answers_no_items(model: str, als_bundle: Path,
                                                   hybrid_bundle: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Once an IndexError (a 500) for customers with a history on a large catalog's hybrid."""
    bundle = {"als": als_bundle, "hybrid": hybrid_bundle}[model]
    monkeypatch.setattr("recsys.models.hybrid.CANDIDATE_MIN_ITEMS", 0)  # as on 92k products
    with TestClient(create_app(settings_for(bundle, tmp_path)),
                    raise_server_exceptions=False) as client:
        for customer in [*known_customers(bundle)[:3], "never-seen"]:
            for mode in ("discover", "mixed", "buy_again"):
                body = get(client, f"/v1/customers/{customer}/recommendations", n=5,
                           category="NO SUCH CATEGORY", mode=mode)
                assert body["items"] == []


def test_buy_again_mode_returns_own_products(client: TestClient, als_bundle: Path) -> None:
    bundle = read_bundle(als_bundle)
    customer = known_customers(als_bundle)[2]
    row = bundle.customer_map.to_index([customer])[0]
    bought = set(bundle.products["product_id"].iloc[bundle.history[row].indices])
    body = get(client, f"/v1/customers/{customer}/recommendations", n=3, mode="buy_again")
    assert {i["product_id"] for i in body["items"]} <= bought


def test_request_id_is_echoed_in_header_and_body(client: TestClient) -> None:
    response = client.get("/v1/popular", headers={**HEADERS, "X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"
    unsafe = client.get("/v1/popular", headers={**HEADERS, "X-Request-ID": "a b\tc"})
    assert unsafe.json()["request_id"] != "a b\tc" and len(unsafe.json()["request_id"]) == 32


@pytest.mark.parametrize(("params", "fragment"), [
    ({"n": 101}, "less than or equal to 100"),
    ({"n": 0}, "greater than or equal to 1"),
    ({"n": "ten"}, "valid integer"),
    ({"mode": "everything"}, "discover"),
    ({"min_price": "cheap"}, "valid number"),
    ({"min_price": "nan"}, "finite number"),
    ({"min_price": 5, "max_price": 1}, "above max_price"),
    ({"exclude_purchased": "maybe"}, "valid boolean"),
])
def test_bad_query_parameters_are_422_with_a_reason(client: TestClient, params: dict,
                                                    fragment: str) -> None:
    response = client.get("/v1/customers/c001/recommendations", params=params,
                          headers=HEADERS)
    assert response.status_code == 422
    assert fragment in response.text


def test_overlong_customer_id_is_422(client: TestClient) -> None:
    response = client.get(f"/v1/customers/{'x' * 200}/recommendations", headers=HEADERS)
    assert response.status_code == 422


def test_similar_matches_the_engine_and_excludes_the_product(client: TestClient,
                                                             als_bundle: Path) -> None:
    engine = Engine(read_bundle(als_bundle))
    for product in product_ids(als_bundle)[:15]:
        body = get(client, f"/v1/products/{product}/similar", n=8)
        ids = [i["product_id"] for i in body["items"]]
        expected = engine.similar(product, 8)
        assert product not in ids and len(ids) == 8
        # The engine drops out-of-stock items after taking the top n, the index filters inside
        # the search: the engine's list is a prefix of ours, equal when it is full.
        assert ids[: len(expected)] == [p.product_id for p in expected]
        scores = [i["score"] for i in body["items"]][: len(expected)]
        assert scores == pytest.approx([p.score for p in expected], abs=1e-5)


def test_similar_unknown_product_is_404_naming_it(client: TestClient) -> None:
    response = client.get("/v1/products/no-such-sku/similar", headers=HEADERS)
    assert response.status_code == 404
    assert "'no-such-sku' is not in the catalog" in response.json()["detail"]


def test_similar_in_category_returns_only_that_category(client: TestClient,
                                                        als_bundle: Path) -> None:
    bundle = read_bundle(als_bundle)
    products = bundle.products.set_index("product_id")
    category = str(products["category"].iloc[3]).split(" > ")[0]
    body = get(client, f"/v1/products/{products.index[0]}/similar", n=5, category=category)
    assert body["items"]
    assert all(str(products.loc[i["product_id"], "category"]).startswith(category)
               for i in body["items"])


def test_popular_windows_and_unknown_window(client: TestClient) -> None:
    everything = get(client, "/v1/popular", n=5)
    recent = get(client, "/v1/popular", n=5, window="7d")
    assert everything["window"] == "all" and recent["window"] == "7d"
    scores = [i["score"] for i in everything["items"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 5
    assert {i["reason_code"] for i in recent["items"]} == {"trending"}
    bad = client.get("/v1/popular", params={"window": "1y"}, headers=HEADERS)
    assert bad.status_code == 422 and "window '1y' is unknown" in bad.json()["detail"]


def test_cart_for_anonymous_shopper_excludes_the_basket(client: TestClient,
                                                        als_bundle: Path) -> None:
    basket = product_ids(als_bundle)[:3]
    response = client.post("/v1/cart/recommendations", params={"n": 6}, headers=HEADERS,
                           json={"product_ids": [*basket, "unknown-sku"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["items"]) == 6 and not set(basket) & {i["product_id"] for i in body["items"]}
    assert body["ignored_product_ids"] == ["unknown-sku"] and body["variant"] == "champion"


def test_cart_with_only_unknown_products_falls_back_to_popular(client: TestClient) -> None:
    response = client.post("/v1/cart/recommendations", headers=HEADERS,
                           json={"product_ids": ["nope"], "customer_id": "c001"})
    assert response.status_code == 200
    assert response.json()["fallback"] == "empty_basket"


@pytest.mark.parametrize(("body", "fragment"), [
    ({"product_ids": []}, "at least 1 item"),
    ({"product_ids": "p001"}, "valid list"),
    ({"product_ids": [1, 2]}, "valid string"),
    ({"product_ids": ["p001"], "shopper": "x"}, "Extra inputs"),
    ({"product_ids": ["p"] * 201}, "at most 200 products"),
])
def test_cart_bad_bodies_are_422(client: TestClient, body: dict, fragment: str) -> None:
    response = client.post("/v1/cart/recommendations", json=body, headers=HEADERS)
    assert response.status_code == 422 and fragment in response.text


def test_cart_bad_json_is_422(client: TestClient) -> None:
    response = client.post("/v1/cart/recommendations", content=b"{not json",
                           headers={**HEADERS, "Content-Type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.text
