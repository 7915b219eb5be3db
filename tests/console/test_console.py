"""The console over HTTP (no browser): login, sessions, CSRF, roles, bad input, what each
page and action returns. tests/console/test_browser.py drives the same pages in Chromium."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from recsys.customers import STAGES
from serving.console.auth import SESSION_COOKIE
from tests.console.conftest import (
    ADMIN_KEY,
    ANALYST_KEY,
    CLIENT_KEY,
    PRIVACY_KEY,
    MakeClient,
    csrf_of,
    known_customers,
    log_in,
)

PAGES = ("/console", "/console/customers", "/console/coupons", "/console/experiments",
         "/console/lookup", "/console/actions")


def audit(client: TestClient) -> list[dict[str, object]]:
    path = Path(client.app.state.settings.data_dir) / "console-audit.jsonl"  # type: ignore[attr-defined]
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_pages_need_a_login_and_open_with_an_admin_or_analyst_key(make_client: MakeClient
                                                                   ) -> None:
    with make_client() as client:
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
        for key, role in ((ADMIN_KEY, "admin"), (ANALYST_KEY, "analyst")):
            client.cookies.clear()
            answer = log_in(client, key)
            assert answer.status_code == 303 and answer.headers["location"] == "/console"
            cookie = answer.headers["set-cookie"]
            for flag in ("HttpOnly", "SameSite=strict", "Path=/console"):
                assert flag in cookie
            assert key not in cookie
            for path in PAGES:
                page = client.get(path)
                assert page.status_code == 200, (path, page.text[:300])
                assert f"({role})" in page.text and key not in page.text
                assert page.headers["cache-control"] == "no-store"
                assert "default-src 'none'" in page.headers["content-security-policy"]


def test_wrong_or_storefront_keys_and_forms_without_token_cannot_log_in(make_client: MakeClient
                                                                         ) -> None:
    with make_client() as client:
        for key in ("not-a-key", CLIENT_KEY, PRIVACY_KEY, ""):
            answer = log_in(client, key)
            assert answer.status_code == 401, key
            assert "does not open the console" in answer.text
            assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
            assert client.get("/console").status_code == 303
        client.get("/console/login")
        answer = client.post("/console/login", data={"name": "x", "key": ADMIN_KEY})
        assert answer.status_code == 403 and "CSRF" in answer.text
        assert log_in(client, ADMIN_KEY, name="<script>").status_code == 422
        assert client.post("/console/login", content=b"{}", headers={
            "content-type": "application/json"}).status_code == 415
    assert not any(r["action"] == "login" for r in audit(client))


def test_a_forged_or_logged_out_session_is_refused(make_client: MakeClient) -> None:
    with make_client() as client:
        log_in(client, ANALYST_KEY)
        real = client.cookies[SESSION_COOKIE]
        body, mac = real.split(".")
        payload = json.loads(base64.urlsafe_b64decode(body + "=="))
        forged = base64.urlsafe_b64encode(
            json.dumps(payload | {"r": "admin"}).encode()).rstrip(b"=").decode()
        client.cookies.set(SESSION_COOKIE, f"{forged}.{mac}", path="/console")
        assert client.get("/console").status_code == 303
        client.cookies.set(SESSION_COOKIE, real, path="/console")
        page = client.get("/console")
        assert page.status_code == 200
        assert client.post("/console/logout", data={}).status_code == 403  # no CSRF token
        assert client.post("/console/logout", data={"csrf": csrf_of(page.text)}
                           ).status_code == 303
        client.cookies.set(SESSION_COOKIE, real, path="/console")  # replay the old cookie
        assert client.get("/console").status_code == 303


def test_actions_need_the_session_csrf_token_and_reload_needs_admin(make_client: MakeClient
                                                                    ) -> None:
    with make_client() as other, make_client() as client:
        log_in(other, ADMIN_KEY)
        foreign = csrf_of(other.get("/console/actions").text)  # another session's token
        log_in(client, ADMIN_KEY)
        for form in ({}, {"csrf": ""}, {"csrf": "x" * 43}, {"csrf": foreign}):
            answer = client.post("/console/actions/reload", data=form)
            assert answer.status_code == 403 and "CSRF" in answer.text
            answer = client.post("/console/actions/export", data=form | {"audience": "all"})
            assert answer.status_code == 403
        assert not any(r["action"] in ("reload", "export") for r in audit(client))
        token = csrf_of(client.get("/console/actions").text)
        answer = client.post("/console/actions/reload", data={"csrf": token})
        assert answer.status_code == 200 and "Reload: ok" in answer.text
        client.cookies.clear()
        log_in(client, ANALYST_KEY)
        token = csrf_of(client.get("/console/actions").text)
        answer = client.post("/console/actions/reload", data={"csrf": token})
        assert answer.status_code == 403 and "admin key" in answer.text
        answer = client.post("/console/actions/promote", data={"csrf": token})
        assert answer.status_code == 403
    assert [r["action"] for r in audit(client) if r["action"] == "reload"] == ["reload"]


def test_promotion_needs_a_registered_challenger(make_client: MakeClient,
                                                 challenger: Path) -> None:
    with make_client() as client:
        log_in(client, ADMIN_KEY)
        token = csrf_of(client.get("/console/actions").text)
        answer = client.post("/console/actions/promote", data={"csrf": token})
        assert answer.status_code == 409 and "no challenger is live" in answer.text
    with make_client(challenger_share=0.5, challenger_bundle_path=challenger) as client:
        log_in(client, ADMIN_KEY)
        token = csrf_of(client.get("/console/actions").text)
        answer = client.post("/console/actions/promote", data={"csrf": token})
        assert answer.status_code == 409 and "bundle directories" in answer.text


def test_lookup_answers_as_the_api_and_is_audited_by_keyed_hash(make_client: MakeClient,
                                                                 champion: Path) -> None:
    customer = known_customers(champion, 1)[0]
    with make_client() as client:
        log_in(client, ANALYST_KEY, name="Support Agent")
        token = csrf_of(client.get("/console/lookup").text)
        page = client.post("/console/lookup", data={"csrf": token, "customer_id": customer})
        assert page.status_code == 200
        api = client.get(f"/v1/customers/{customer}/recommendations",
                         params={"include_coupons": "true"},
                         headers={"X-API-Key": CLIENT_KEY}).json()
        assert api["personalized"] and api["items"]
        shown = [row.split('"')[0] for row in page.text.split('data-product="')[1:]]
        assert shown == [i["product_id"] for i in api["items"]]
        for item in api["items"]:
            assert item["reason"].replace("'", "&#39;") in page.text
        for coupon in api["coupons"]:
            assert f'data-coupon="{coupon["coupon_id"]}"' in page.text
        assert 'id="profile"' in page.text
        record = audit(client)[-1]
        subject = client.app.state.runtime.store.subject(customer)  # type: ignore[attr-defined]
        assert record["action"] == "lookup" and record["who"] == "Support Agent"
        assert record["subject"] == subject and record["outcome"] == "known"
        assert customer not in json.dumps(audit(client))
        for bad in ("", "x" * 129, "a\x00b"):
            answer = client.post("/console/lookup", data={"csrf": token, "customer_id": bad})
            assert answer.status_code == 422
        assert client.post("/console/lookup", data={"customer_id": customer}).status_code == 403


def test_lookup_of_an_opted_out_then_erased_customer(make_client: MakeClient,
                                                     champion: Path) -> None:
    customer = known_customers(champion, 3)[2]
    with make_client() as client:
        log_in(client, ADMIN_KEY)
        token = csrf_of(client.get("/console/lookup").text)
        assert client.put(f"/v1/customers/{customer}/consent", json={"personalization": False},
                          headers={"X-API-Key": PRIVACY_KEY}).status_code == 200
        page = client.post("/console/lookup", data={"csrf": token, "customer_id": customer})
        assert "Not personalized (not_personalized)" in page.text
        assert 'id="profile"' not in page.text and "refused" in page.text
        assert client.delete(f"/v1/customers/{customer}",
                             headers={"X-API-Key": PRIVACY_KEY}).status_code == 200
        page = client.post("/console/lookup", data={"csrf": token, "customer_id": customer})
        assert 'id="erased"' in page.text and 'id="recommendations"' not in page.text
        assert audit(client)[-1]["outcome"] == "erased"


def test_customer_page_funnel_and_moves_to_the_challenger(make_client: MakeClient,
                                                          champion: Path,
                                                          challenger: Path) -> None:
    before = pd.read_parquet(champion / "customers.parquet")["stage"].value_counts()
    after = pd.read_parquet(challenger / "customers.parquet")["stage"].value_counts()
    with make_client(challenger_share=0.5, challenger_bundle_path=challenger) as client:
        log_in(client, ANALYST_KEY)
        page = client.get("/console/customers").text
    funnel = page.split('id="funnel"')[1].split("</table>")[0]
    for stage in STAGES:
        row = funnel.split(f'<th scope="row">{stage.replace("_", " ")}</th>')[1].split("</tr>")[0]
        assert f'data-value="{int(before.get(stage, 0))}"' in row
        change = int(after.get(stage, 0)) - int(before.get(stage, 0))
        assert f">{change:+,}<" in row
    assert 'id="moves"' in page


def test_export_downloads_the_picks_of_an_audience(make_client: MakeClient,
                                                   champion: Path) -> None:
    frame = pd.read_parquet(champion / "customers.parquet")
    segment = str(frame["segment"].value_counts().index[0])
    members = frame.loc[frame["segment"] == segment, "customer_id"].astype(str).tolist()
    with make_client(console_export_max=len(members)) as client:
        log_in(client, ANALYST_KEY)
        token = csrf_of(client.get("/console/actions").text)
        answer = client.post("/console/actions/export", data={
            "csrf": token, "audience": f"segment:{segment}", "n": "5", "coupons": "1"})
        assert answer.status_code == 200
        assert answer.headers["content-disposition"].startswith("attachment;")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [r["customer_id"] for r in rows] == members
        api = client.get(f"/v1/customers/{members[0]}/recommendations", params={"n": 5},
                         headers={"X-API-Key": CLIENT_KEY}).json()
        assert rows[0]["product_ids"].split("|") == [i["product_id"] for i in api["items"]]
        for form, status in (({"audience": "segment:nope"}, 422), ({"audience": "all"}, 413),
                             ({"audience": f"segment:{segment}", "n": "0"}, 422),
                             ({"audience": f"segment:{segment}", "coupons": "x"}, 422)):
            assert client.post("/console/actions/export", data={"csrf": token} | form
                               ).status_code == status, form


def test_overview_counts_the_api_requests_it_served(make_client: MakeClient,
                                                    champion: Path) -> None:
    customers = known_customers(champion, 3)
    with make_client() as client:
        log_in(client, ANALYST_KEY)
        for customer in customers:
            assert client.get(f"/v1/customers/{customer}/recommendations",
                              headers={"X-API-Key": CLIENT_KEY}).status_code == 200
        client.get("/v1/customers/x/recommendations")  # 401: counted as refused
        page = client.get("/console").text
    live = page.split('id="live"')[1].split("</dl>")[0]
    assert "<dt>Requests</dt><dd>4</dd>" in live
    assert "<dt>Refused requests (4xx)</dt><dd>1</dd>" in live
    assert "<dt>Server errors (5xx)</dt><dd>0 (0.00 %)</dd>" in live


def test_experiments_and_coupons_pages_show_the_analysis(make_client: MakeClient,
                                                         champion: Path) -> None:
    customers = known_customers(champion, 40)
    with make_client() as client:
        log_in(client, ANALYST_KEY)
        assert "No experiment report" in _settled(client, "/console/experiments")
        for customer in customers:
            shown = client.get(f"/v1/customers/{customer}/recommendations",
                               params={"include_coupons": "true"},
                               headers={"X-API-Key": CLIENT_KEY}).json()
        # exposures without any event yet: the report, every outcome zero (was a pandas
        # error, "'customer_id' is both an index level and a column label", on the page)
        client.app.state.console.background._slots.clear()  # type: ignore[attr-defined]
        page = _settled(client, "/console/experiments")
        assert 'id="srm"' in page and 'id="variants"' in page, page
        assert "No experiment report" not in page and "index level" not in page
        variants = page.split('id="variants"')[1].split("</table>")[0]
        assert '<td class="n">40</td><td class="n">0.00</td><td class="n">0.0 %</td>' \
            in variants
        events = [{"event_id": f"e{i}", "customer_id": c, "event_type": "purchase",
                   "product_id": shown["items"][0]["product_id"], "amount": 5.0}
                  for i, c in enumerate(customers[:20])]
        assert client.post("/v1/events", json={"events": events},
                           headers={"X-API-Key": CLIENT_KEY}).status_code == 200
        client.app.state.console.background._slots.clear()  # type: ignore[attr-defined]
        page = _settled(client, "/console/experiments")
        assert 'id="srm"' in page and 'id="variants"' in page
        coupons = _settled(client, "/console/coupons")
        report = client.get("/admin/experiments", headers={"X-API-Key": ADMIN_KEY}).json()
        for c in report["coupons"]:
            row = coupons.split(f'<th scope="row">{c["coupon_id"]}</th>')[1].split("</tr>")[0]
            assert f'<td class="n">{c["treated"]:,}</td>' in row


def _settled(client: TestClient, path: str, timeout: float = 30.0) -> str:
    """The page once its background analysis is done (it refreshes itself until then)."""
    deadline = time.time() + timeout
    while True:
        page = client.get(path).text
        if 'http-equiv="refresh"' not in page or time.time() > deadline:
            return page
        time.sleep(0.1)


def test_without_console_keys_nobody_logs_in(make_client: MakeClient) -> None:
    with make_client(admin_key=None, analyst_keys=None) as client:
        assert "The console is disabled" in client.get("/console/login").text
        for key in (CLIENT_KEY, ""):
            answer = log_in(client, key)
            assert answer.status_code == 403 and "The console is disabled" in answer.text


def test_a_kpi_dataset_that_cannot_be_read_is_named_on_the_page(make_client: MakeClient
                                                                 ) -> None:
    with make_client(console_dataset="no-such-dataset") as client:
        log_in(client, ANALYST_KEY)
        page = _settled(client, "/console/customers")
        assert "No KPI report: DataError: 'no-such-dataset': unknown source" in \
            page.replace("&#39;", "'")
        assert 'id="funnel"' in page  # the rest of the page is there
