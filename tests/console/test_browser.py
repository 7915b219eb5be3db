"""The console in a real browser: Playwright drives Debian's Chromium against the app served
by uvicorn on a loopback port. The tests skip, saying why, when no Chromium binary exists
(.ci/run installs it).

Each page is also saved as a screenshot; ``CONSOLE_SCREENSHOTS=docs/console`` writes them
where docs/console.md shows them (default: a temporary directory).
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn
from typer.testing import CliRunner

from serving.main import create_app
from tests.console.conftest import (
    ADMIN_KEY,
    ANALYST_KEY,
    CLIENT_KEY,
    DATASET,
    PRIVACY_KEY,
    console_settings,
    known_customers,
)
from training.cli import app as cli

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary (chromium or chromium-browser on PATH, or "
                             "CHROMIUM=/path): apt-get install chromium, as .ci/run does")
DESKTOP, PHONE = {"width": 1280, "height": 860}, {"width": 390, "height": 844}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(champion: Path, challenger: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[dict[str, Any]]:
    """The app (champion + challenger on half the customers) under uvicorn in a thread, with
    some traffic: answers shown (exposures) and purchases, so every page has content."""
    data_dir = tmp_path_factory.mktemp("console-live")
    settings = console_settings(champion, data_dir, challenger_share=0.5,
                                challenger_bundle_path=challenger)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while not (server.started and httpx.get(f"{url}/ready").status_code == 200):
        assert time.time() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.1)
    api = httpx.Client(base_url=url, headers={"X-API-Key": CLIENT_KEY})
    customers = known_customers(champion, 60)
    events = []
    for i, customer in enumerate(customers[10:]):
        shown = api.get(f"/v1/customers/{customer}/recommendations",
                        params={"include_coupons": "true"}).json()
        if i % 2:
            events.append({"event_id": f"seed-{i}", "customer_id": customer,
                           "event_type": "purchase", "amount": 4.5 + i % 7,
                           "product_id": shown["items"][0]["product_id"]})
        if i % 3 == 0 and shown["coupons"]:  # redeemed: the discount the retailer paid
            events.append({"event_id": f"seed-coupon-{i}", "customer_id": customer,
                           "event_type": "coupon_redeemed", "amount": 2.5,
                           "coupon_id": shown["coupons"][0]["coupon_id"]})
    assert api.post("/v1/events", json={"events": events}).status_code == 200
    yield {"url": url, "api": api, "data_dir": data_dir, "customers": customers[:10]}
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def log_in(page: Any, url: str, key: str, name: str = "Dana Support") -> None:
    page.goto(f"{url}/console")  # sent to the login page
    page.get_by_label("Your name (for the audit log)").fill(name)
    page.get_by_label("Key").fill(key)
    page.get_by_role("button", name="Log in").click()


def test_a_wrong_key_cannot_log_in(page: Any, server: dict[str, Any], shots: Path) -> None:
    log_in(page, server["url"], "not-the-key")
    assert page.url.endswith("/console/login")
    assert page.locator("#login-error").inner_text() == "This key does not open the console."
    assert page.get_by_label("Key").input_value() == ""  # the key is not sent back
    assert not [c for c in page.context.cookies() if c["name"] == "console_session"]
    page.screenshot(path=shots / "login.png")
    log_in(page, server["url"], CLIENT_KEY)  # a storefront key is not a console key
    assert page.locator("#login-error").is_visible()


def test_log_in_and_see_the_kpis_of_recsys_customers_kpis(
        page: Any, server: dict[str, Any], shots: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    log_in(page, server["url"], ANALYST_KEY)
    assert page.url.endswith("/console")
    cookie = next(c for c in page.context.cookies() if c["name"] == "console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.get_by_role("heading", name="Overview", level=1).is_visible()
    page.screenshot(path=shots / "overview.png", full_page=True)

    monkeypatch.setenv("RECSYS_DATA_DIR", str(server["data_dir"]))  # the same event store
    result = CliRunner().invoke(cli, ["customers", "kpis", "--dataset", DATASET, "--out",
                                      str(tmp_path / "kpis.parquet")])
    assert result.exit_code == 0, result.output
    expected = pd.read_parquet(tmp_path / "kpis.parquet")
    cohorts = pd.read_parquet(tmp_path / "kpis_cohorts.parquet")

    page.get_by_role("link", name="Customers").click()
    page.wait_for_selector("#kpis", timeout=120_000)  # computed in the background
    cells = page.eval_on_selector_all("#kpis td", "tds => tds.map(td => [td.closest('tr')"
                                      ".dataset.period, td.dataset.column, td.dataset.value])")
    shown = {(p, c): v for p, c, v in cells}
    assert {p for p, _ in shown} == set(expected.index)
    columns = ["customers", "new_customers", "orders", "revenue", "repeat_purchase_rate",
               "aov", "purchase_frequency", "active_at_start", "lost", "churn_rate"]
    for period, row in expected.iterrows():
        for column in columns:
            value = float(shown[(period, column)])
            assert (math.isnan(value) and math.isnan(row[column])) or \
                value == pytest.approx(row[column], rel=1e-12), (period, column)
    # the visible text is the same figure, as a percentage
    first = expected.index[1]
    text = page.locator(f'#kpis tr[data-period="{first}"] td[data-column="churn_rate"]')
    assert text.inner_text() == f"{expected.loc[first, 'churn_rate'] * 100:.1f} %"
    retention = page.eval_on_selector_all("#cohorts tbody tr", "trs => trs.map(tr => "
                                          "[...tr.querySelectorAll('td[data-value]')].map("
                                          "td => td.dataset.value))")
    months = [c for c in cohorts.columns if c != "customers"]
    for values, (_, row) in zip(retention, cohorts.iterrows(), strict=True):
        for value, month in zip(values, months, strict=True):
            assert (math.isnan(float(value)) and math.isnan(row[month])) or \
                float(value) == pytest.approx(row[month], rel=1e-12)
    page.screenshot(path=shots / "customers.png", full_page=True)
    for name, file in (("Coupons", "coupons"), ("Experiments", "experiments"),
                       ("Actions", "actions")):
        page.get_by_role("link", name=name).click()
        deadline = time.time() + 60  # the analysis runs in the background; the page reloads
        while page.locator("meta[http-equiv=refresh]").count():
            assert time.time() < deadline, f"{name}: the analysis did not finish"
            page.wait_for_timeout(500)
        page.wait_for_load_state()
        assert page.get_by_role("heading", name=name, level=1).is_visible()
        page.screenshot(path=shots / f"{file}.png", full_page=True)


def lookup(page: Any, customer: str) -> None:
    page.get_by_role("link", name="Customer lookup").click()
    page.get_by_label("Customer id").fill(customer)
    page.get_by_role("button", name="Look up").click()
    page.wait_for_selector("#customer")


def test_look_up_a_customer_and_see_the_api_recommendations(
        page: Any, server: dict[str, Any], shots: Path) -> None:
    customer = server["customers"][0]
    log_in(page, server["url"], ANALYST_KEY, name="Sam Support")
    lookup(page, customer)
    api = server["api"].get(f"/v1/customers/{customer}/recommendations",
                            params={"include_coupons": "true"}).json()
    assert api["personalized"]
    rows = page.locator("#recommendations tbody tr")
    assert rows.count() == len(api["items"])
    for i, item in enumerate(api["items"]):
        row = rows.nth(i)
        assert row.get_attribute("data-product") == item["product_id"]
        assert row.get_attribute("data-reason-code") == item["reason_code"]
        assert item["reason"] in row.inner_text()
    assert page.eval_on_selector_all("#coupons tbody tr[data-coupon]",
                                     "trs => trs.map(tr => tr.dataset.coupon)") == \
        [c["coupon_id"] for c in api["coupons"]]
    assert page.locator("#answer-kind").inner_text().startswith("Personalized")
    assert page.locator("#profile").is_visible()
    assert customer not in page.url  # looked up by POST: the id stays out of URLs and logs
    page.screenshot(path=shots / "lookup.png", full_page=True)


def test_an_opted_out_customer_shows_no_personalization(
        page: Any, server: dict[str, Any]) -> None:
    customer = server["customers"][1]
    privacy = {"X-API-Key": PRIVACY_KEY}
    assert server["api"].put(f"/v1/customers/{customer}/consent", headers=privacy,
                             json={"personalization": False}).status_code == 200
    log_in(page, server["url"], ANALYST_KEY)
    lookup(page, customer)
    api = server["api"].get(f"/v1/customers/{customer}/recommendations",
                            params={"include_coupons": "true"}).json()
    assert not api["personalized"]
    assert page.locator("#answer-kind").inner_text().startswith(
        f"Not personalized ({api['fallback']})")
    assert page.locator("#personalization").inner_text().startswith("refused")
    assert page.locator("#profile").count() == 0
    assert page.eval_on_selector_all("#recommendations tbody tr[data-product]",
                                     "trs => trs.map(tr => tr.dataset.product)") == \
        [i["product_id"] for i in api["items"]]
    assert page.locator("#coupons tbody tr[data-coupon]").count() == len(api["coupons"])


def test_an_erased_customer_shows_nothing(page: Any, server: dict[str, Any]) -> None:
    customer = server["customers"][2]
    assert server["api"].delete(f"/v1/customers/{customer}",
                                headers={"X-API-Key": PRIVACY_KEY}).status_code == 200
    log_in(page, server["url"], ANALYST_KEY)
    lookup(page, customer)
    assert page.locator("#erased").is_visible()
    assert page.locator("#recommendations, #profile, #purchases, #history").count() == 0


def test_an_action_without_a_csrf_token_is_refused(page: Any, server: dict[str, Any],
                                                   shots: Path) -> None:
    log_in(page, server["url"], ADMIN_KEY, name="Alex Admin")
    page.get_by_role("link", name="Actions").click()
    request = page.context.request  # the browser's cookies, without the form's token
    for path in ("/console/actions/reload", "/console/actions/promote",
                 "/console/actions/export", "/console/lookup", "/console/logout"):
        for form in ({}, {"csrf": "forged"}):
            answer = request.post(f"{server['url']}{path}", form=form | {"audience": "all"})
            assert answer.status == 403, (path, form)
            assert "CSRF" in answer.text()
    page.get_by_role("button", name="Reload the models").click()
    assert page.locator("#message").inner_text() == "Reload: ok"
    audit = page.locator("#audit tbody tr").all_inner_texts()
    assert any("Alex Admin" in row and "reload" in row for row in audit)
    assert any("Sam Support" in row and "lookup" in row for row in audit)
    page.screenshot(path=shots / "actions-admin.png", full_page=True)


def test_pages_fit_a_phone_and_name_their_parts(browser: Any, server: dict[str, Any],
                                                shots: Path) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, server["url"], ANALYST_KEY)
    for path in ("", "/customers", "/coupons", "/experiments", "/lookup", "/actions"):
        page.goto(f"{server['url']}/console{path}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        assert page.locator("h1").count() == 1
        assert page.evaluate("[...document.querySelectorAll('table')].every(t => t.caption "
                             "&& t.caption.textContent.trim())"), path
        assert page.evaluate("[...document.querySelectorAll('input:not([type=hidden]), "
                             "select')].every(e => e.labels.length > 0)"), path
        assert page.evaluate("[...document.querySelectorAll('svg')].every(s => "
                             "s.getAttribute('role') === 'img' && s.querySelector('title'))")
    page.goto(f"{server['url']}/console")
    page.screenshot(path=shots / "overview-phone.png", full_page=True)
    context.close()
