"""``GET /admin/experiments``: the experiment read from the server's own exposure log and
events, with per-variant guardrails from its metrics."""

from __future__ import annotations

from pathlib import Path

from tests.serving.conftest import ADMIN, HEADERS, MakeClient, known_customers


def test_experiment_results_from_live_traffic(make_client: MakeClient, als_bundle: Path
                                              ) -> None:
    customers = known_customers(als_bundle, k=80)
    with make_client(challenger_share=0.5, challenger_bundle_path=als_bundle) as client:
        missing = client.get("/admin/experiments", headers=ADMIN)
        assert missing.status_code == 404 and "no exposures" in missing.json()["detail"]
        shown = {}
        for c in customers:
            body = client.get(f"/v1/customers/{c}/recommendations?n=5", headers=HEADERS).json()
            shown[c] = body["items"][0]["product_id"]
        buyers = customers[:20]
        events = [{"event_id": f"buy-{c}", "customer_id": c, "event_type": "purchase",
                   "product_id": shown[c], "amount": 10.0} for c in buyers]
        assert client.post("/v1/events", json={"events": events},
                           headers=HEADERS).status_code == 200
        response = client.get("/admin/experiments?window_days=7&pre_days=28", headers=ADMIN)
        assert response.status_code == 200, response.text
        result = response.json()
        assert set(result["variants"]) == {"champion", "challenger"}
        assert sum(v["exposed_customers"] for v in result["variants"].values()) == 80
        assert sum(v["customers_bought_shown"] for v in result["variants"].values()) == 20
        assert sum(v["attributed_revenue"] for v in result["variants"].values()) == 200.0
        assert result["srm"]["expected"] == {"champion": 0.5, "challenger": 0.5}
        assert result["interval"] == "welch" and result["comparisons"]
        for variant in ("champion", "challenger"):
            guard = result["guardrails"][variant]
            assert guard["error_rate"] == 0.0 and guard["requests"] > 0
            assert guard["latency_p99_ms"] > 0
        assert "recsys_variant_answers" in client.get("/metrics", headers=ADMIN).text


def test_bad_queries_are_4xx(make_client: MakeClient) -> None:
    with make_client() as client:
        for query in ("interval=bayes", "window_days=0", "pre_days=-1", "since=yesterday"):
            response = client.get(f"/admin/experiments?{query}", headers=ADMIN)
            assert response.status_code == 422, (query, response.text)
        assert client.get("/admin/experiments").status_code == 401
        assert client.get("/admin/experiments", headers=HEADERS).status_code in (401, 403)


def test_exposures_without_events_give_the_report(make_client: MakeClient, als_bundle: Path
                                                  ) -> None:
    # Before the fix: 404 "'customer_id' is both an index level and a column label" (pandas).
    customers = known_customers(als_bundle, k=20)
    with make_client(challenger_share=0.5, challenger_bundle_path=als_bundle) as client:
        for c in customers:
            assert client.get(f"/v1/customers/{c}/recommendations?n=5",
                              headers=HEADERS).status_code == 200
        for events in ([], [{"event_id": "v1", "customer_id": customers[0],
                             "event_type": "view", "product_id": "p-any"},
                            {"event_id": "r1", "customer_id": "never-shown",
                             "event_type": "coupon_redeemed", "coupon_id": "c-any",
                             "amount": 5.0}]):
            if events:  # a view, and a redemption by a customer shown nothing
                assert client.post("/v1/events", json={"events": events},
                                   headers=HEADERS).status_code == 200
            response = client.get("/admin/experiments", headers=ADMIN)
            assert response.status_code == 200, response.text
            result = response.json()
            variants = result["variants"].values()
            assert sum(v["exposed_customers"] for v in variants) == 20
            assert {v["revenue_per_customer"] for v in variants} == {0.0}
            assert {v["visit_rate"] for v in variants} == {0.0}
            assert result["comparisons"]
            for row in result["comparisons"]:  # all zero: a zero-width interval at 0
                assert row["diff"] == row["low"] == row["high"] == 0.0
                assert row["significant"] is False
