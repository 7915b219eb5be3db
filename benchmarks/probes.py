"""Issue 16's probes against a live server: what a new user, then an attacker, sees.

    python benchmarks/probes.py                 # The Complete Journey bundle (built once)
    python benchmarks/probes.py --bundle DIR    # any bundle directory

Starts the server (2 workers, as ``recsys serve``) on a fresh data dir with a storefront key
(read + events), a privacy key and an admin key, sends each probe and prints a Markdown table
of what it answered. The probes that need a retrain (an erased customer after the next
training, the pyfunc, batch picks, training data) are in ``tests/reliability/
test_erasure_sticks.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before benchmarks/, whose serving.py would shadow `serving`

import httpx  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.serving import (  # noqa: E402
    CJ_CACHE,
    build_completejourney,
    start_server,
    wait_ready,
)

KEYS = {"store": "probe-storefront-key", "privacy": "probe-privacy-key", "admin": "probe-admin"}


def probes(base: str, bundle: Path, data_dir: Path) -> list[tuple[str, str]]:
    """(probe, what the server answered) rows."""
    store, privacy = {"X-API-Key": KEYS["store"]}, {"X-API-Key": KEYS["privacy"]}
    http = httpx.Client(base_url=base, timeout=60)
    customers = pd.read_parquet(bundle / "customers.parquet")
    regulars = customers.loc[customers["consent_personalization"], "customer_id"].astype(str)
    # The customer 1025 on The Complete Journey; else the longest id (a 1-character
    # id would be "found" in any file).
    victim = "1025" if "1025" in set(regulars) else max(regulars, key=len)
    regulars = regulars[regulars != victim]
    opted, viewer = regulars.iloc[0], "probe-web-viewer"
    catalog = pd.read_parquet(bundle / "products.parquet")
    titles = dict(zip(catalog["product_id"].astype(str), catalog["title"], strict=True))
    product = str(catalog["product_id"].iloc[0])
    rows: list[tuple[str, str]] = []

    def events(*items: dict[str, Any], headers: dict[str, str] = store) -> httpx.Response:
        return http.post("/v1/events", json={"events": list(items)}, headers=headers)

    def buy(event_id: str, customer: str, kind: str = "purchase", **extra: Any) -> dict:
        return {"event_id": event_id, "customer_id": customer, "event_type": kind,
                "product_id": product, **extra}

    def recs(customer: str, **params: Any) -> dict:
        return http.get(f"/v1/customers/{customer}/recommendations", params=params,
                        headers=store).json()

    # 1. An erased customer comes back.
    events(buy("probe-pre-1", victim))
    erased = http.delete(f"/v1/customers/{victim}", headers=privacy).json()
    resent = events(buy("probe-pre-1", victim)).json()
    new = events(buy("probe-post-1", victim)).json()
    rows.append((f"1. erase {victim}, resend its old event, send a new one",
                 f"erasure deleted {erased['records_deleted']}; resent: stored "
                 f"{resent['stored']}, duplicates {resent['duplicates']}; new: stored "
                 f"{new['stored']}, refused `{new['refused'][0]['reason'][:40]}...`; "
                 f"personalized {recs(victim)['personalized']}"))
    # 7. Erased bytes on disk.
    files = sorted(data_dir.glob("events.db*"))
    found = [f"{n!r} in {p.name}" for p in files for n in (victim, "probe-pre-1")
             if n.encode() in p.read_bytes()]
    rows.append((f"7. the bytes of {victim!r} and of its event id in events.db / -wal",
                 f"found: {found or 'none'} (files {[p.name for p in files]})"))
    # 3. 500s on input.
    far = events(buy("probe-far", "probe-c", timestamp="9999-12-31T23:00:00-05:00"))
    rows.append(("3. timestamp 9999-12-31T23:00:00-05:00",
                 f"{far.status_code}, loc {far.json()['detail'][0]['loc']}"))
    for path, body, headers in (
            ("/v1/events", b'{"events": [{"event_id": "n", "customer_id": "c", "event_type": '
                           b'"purchase", "product_id": "p", "amount": NaN}]}', store),
            ("/v1/batch/recommendations", b'{"customer_ids": ["c"], "max_price": Infinity}',
             store),
            ("/v1/cart/recommendations", b'{"product_ids": [NaN]}', store)):
        answer = http.post(path, content=body,
                           headers={**headers, "Content-Type": "application/json"})
        rows.append((f"3. NaN/Infinity in `POST {path}`",
                     f"{answer.status_code}, loc {answer.json()['detail'][0]['loc']}"))
    consent = http.put(f"/v1/customers/{opted}/consent", content=b'{"personalization": NaN}',
                       headers={**privacy, "Content-Type": "application/json"})
    rows.append(("3. NaN in `PUT .../consent`", f"{consent.status_code}"))
    huge = events(buy("x" * 50_000, "probe-c"))
    rows.append(("3. a 50,000-character event id", f"{huge.status_code}, body "
                                                   f"{len(huge.content):,} bytes"))
    # 4. Reasons.
    events(buy("probe-view-1", viewer, "view"), buy("probe-cart-1", viewer, "add_to_cart"))
    for mode in ("mixed", "buy_again"):
        picks = recs(viewer, n=10, mode=mode, exclude_purchased="false")["items"]
        rows.append((f"4. view + cart only, mode={mode}: reasons of the picks",
                     "; ".join(sorted({f"{p['reason_code']}: {p['reason'][:45]}"
                                       for p in picks}))))
    picks = [p for c in regulars.iloc[2:12] for p in recs(
        c, n=20, mode="mixed", exclude_purchased="false")["items"]]
    itself = [p for p in picks if p["reason"] == f"because you bought {titles[p['product_id']]}"]
    codes = pd.Series([p["reason_code"] for p in picks]).value_counts().to_dict()
    rows.append(("4. 'because you bought' itself (10 regulars, mode=mixed, n=20)",
                 f"{len(itself)} of {len(picks)} picks; codes {codes}"))
    # 5. Coupons and cart of an opted-out regular.
    http.put(f"/v1/customers/{opted}/consent", json={"personalization": False},
             headers=privacy)
    coupons = http.get(f"/v1/customers/{opted}/coupons", headers=store).json()["coupons"]
    cart = http.post("/v1/cart/recommendations", headers=store,
                     json={"product_ids": [product], "customer_id": opted}).json()
    rows.append(("5. opted-out regular: coupons; cart answer",
                 f"coupons {[c['coupon_id'] for c in coupons]}; personalized "
                 f"{cart['personalized']}, fallback {cart['fallback']}"))
    # 6. Keys.
    forged = http.delete(f"/v1/customers/{regulars.iloc[3]}", headers=store)
    garbled = http.post("/v1/events", content=b"{not json",
                        headers={"Content-Type": "application/json"})
    rows.append(("6. storefront key erases a customer; malformed JSON without a key",
                 f"{forged.status_code}; {garbled.status_code}"))
    # 9. Docs, metrics.
    html = http.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    served = [http.get(a).status_code for a in assets]
    labels = sorted(set(re.findall(r'route="(/docs[^"]*|/openapi.json|unmatched)"',
                                   http.get("/metrics").text)))
    rows.append(("9. /docs assets; /metrics route labels",
                 f"{assets} -> {served}; labels {labels}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--port", type=int, default=8731)
    args = parser.parse_args()
    bundle = args.bundle or build_completejourney(CJ_CACHE)
    data_dir = Path(tempfile.mkdtemp(prefix="recsys-probes-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "MLFLOW_"))}
    env.update({"RECSYS_BUNDLE_PATH": str(bundle), "RECSYS_DATA_DIR": str(data_dir),
                "RECSYS_API_KEYS": KEYS["store"], "RECSYS_PRIVACY_KEYS": KEYS["privacy"],
                "RECSYS_ADMIN_KEY": KEYS["admin"], "PYTHONPATH": str(REPO),
                "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    server = start_server(env, args.port, workers=2)
    base = f"http://127.0.0.1:{args.port}"
    try:
        wait_ready(base, server)
        rows = probes(base, bundle, data_dir)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    print("| probe | answer now |\n|---|---|")
    for probe, answer in rows:
        print(f"| {probe} | {answer} |")


if __name__ == "__main__":
    main()
