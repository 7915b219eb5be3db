"""Contract fuzzing: schemathesis against the OpenAPI schema served by a live server.

Every operation of ``/openapi.json`` gets generated requests, valid and invalid data, each
sent with no key, a wrong key, a client key and the admin key. Every answer must be a
non-5xx, documented in the schema, with a body that matches it (schemathesis's default
checks, with its auth probes). Run with ``-s`` to see the case counts.

The first ``HOSTILE_CASES`` valid cases of each operation are also sent in hostile forms
(``hostile``), with each real key: every string 50 KB long, every
number NaN, then Infinity (raw JSON tokens, which Python's parser accepts), every timestamp
far in the past or future; these must answer 4xx, never 5xx.

``positive_data_acceptance`` is left out: some rules are not expressible in a JSON schema
(``min_price <= max_price``, a product event needs a ``product_id``, popularity windows
depend on the loaded bundle); those answer a documented 422 with a sentence.

(The operations are driven through ``APIOperation.as_strategy`` with Hypothesis directly:
schemathesis's ``pytest.from_fixture`` does not work with pytest 9.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.reliability.conftest import ADMIN, CLIENT, PRIVACY, Server, server_env

pytestmark = pytest.mark.slow
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 10}  # per operation
KEYS = {"none": {}, "wrong": {"X-API-Key": "not-a-key"}, "client": CLIENT,
        "privacy": PRIVACY, "admin": ADMIN}
LONG = "x" * 50_000
HOSTILE_CASES = 4  # valid cases per operation also sent in each hostile form
EXTREME_TIMES = ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+14:00",
                 "1970-01-01T00:00:00Z")


def _leaves(value: Any, change: Callable[[str, Any], Any], key: str = "") -> Any:
    """``value`` with each leaf replaced by ``change(its key, leaf)``."""
    if isinstance(value, dict):
        return {k: _leaves(v, change, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_leaves(v, change, key) for v in value]
    return change(key, value)


def _long(_key: str, value: Any) -> Any:
    return LONG if isinstance(value, str) else value


def _number(token: float) -> Callable[[str, Any], Any]:
    def change(_key: str, value: Any) -> Any:
        plain = isinstance(value, int | float) and not isinstance(value, bool)
        return token if plain else value
    return change


def _timestamp(stamp: str) -> Callable[[str, Any], Any]:
    def change(key: str, value: Any) -> Any:
        return stamp if key == "timestamp" else value
    return change


HOSTILE = {"50 KB strings": _long, "NaN": _number(float("nan")),
           "Infinity": _number(float("inf")),
           **{f"timestamp {t}": _timestamp(t) for t in EXTREME_TIMES}}


def hostile(case: schemathesis.Case) -> Iterator[tuple[str, dict[str, Any], bytes | None]]:
    """(label, query, raw JSON body) variants of a valid case (``HOSTILE``); JSON with
    NaN/Infinity tokens, which Python's parser accepts."""
    for label, change in HOSTILE.items():
        query = {k: v if isinstance(v, list) else str(change(k, v))
                 for k, v in (case.query or {}).items()}
        if label == "50 KB strings":  # 50 KB of query in all (httpx caps a URL at 64 KB)
            share = len(LONG) // max(len(query), 1)
            query = {k: v[:share] if isinstance(v, str) else v for k, v in query.items()}
        body = json.dumps(_leaves(case.body, change)).encode() \
            if isinstance(case.body, dict | list) else None
        if body is not None or query != (case.query or {}):
            yield label, query, body


@pytest.fixture(scope="module")
def live(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz")
    server = Server(server_env(root / "data", bundle), root / "server.log").start()
    server.wait()
    yield server
    server.stop()


def fuzz(operation: Any, mode: GenerationMode, tally: Counter[str]) -> None:
    """Run ``EXAMPLES[mode]`` generated cases of ``operation``, each with every key."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        for label, key in KEYS.items():
            # The key is in the case (so its data is judged as sent) and passed as explicit
            # auth (so `ignored_auth` also probes without it and with a wrong one); "none"
            # sends no key at all.
            case.headers = {k: v for k, v in (case.headers or {}).items()
                            if k.lower() != "x-api-key"} | key
            response = case.call_and_validate(headers=key or None, timeout=30,
                                              excluded_checks=[positive_data_acceptance])
            assert response.status_code < 500, (label, response.text)
            tally[f"{response.status_code}"] += 1
        if mode == GenerationMode.POSITIVE and \
                tally[f"hostile {operation.label}"] < HOSTILE_CASES:
            tally[f"hostile {operation.label}"] += 1
            send_hostile(case, tally)
        tally[operation.label] += 1

    run()


def send_hostile(case: schemathesis.Case, tally: Counter[str]) -> None:
    """The hostile variants of ``case`` with each key: never a 5xx."""
    base = str(case.operation.base_url or "").rstrip("/")
    path = case.formatted_path
    for label, query, body in hostile(case):
        for name, key in KEYS.items():
            if name in ("none", "wrong"):  # refused before the input is read
                continue
            headers = {**key, "Content-Type": "application/json"} if body is not None else key
            response = httpx.request(case.method, base + path, params=query, content=body,
                                     headers=headers, timeout=60)
            assert response.status_code < 500, (label, name, response.text[:500])
            assert len(response.content) < 20_000, (label, name, len(response.content))
            tally[f"{response.status_code}"] += 1
            tally["hostile"] += 1


def test_every_operation_honours_its_contract(live: Server) -> None:
    api = schemathesis.openapi.from_url(f"{live.base}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    tally: Counter[str] = Counter()
    failures: dict[str, str] = {}
    for operation in operations:
        for mode in EXAMPLES:
            try:
                fuzz(operation, mode, tally)
            except Unsatisfiable:  # an operation without inputs has no invalid input
                assert mode == GenerationMode.NEGATIVE and not operation.body
                assert not list(operation.iter_parameters())
            except (Exception, BaseExceptionGroup) as exc:  # report every operation
                failures[f"{operation.label} ({mode})"] = f"{type(exc).__name__}: {exc}"

    cases = sum(tally[op.label] for op in operations)
    print(f"\nfuzz: {cases} generated cases over {len(operations)} operations, "
          f"{cases * len(KEYS)} requests; statuses: "
          f"{ {k: v for k, v in sorted(tally.items()) if k.isdigit()} }; "
          f"{tally['hostile']} of them hostile (50 KB strings, NaN, Infinity, extreme times)")
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert all(tally[op.label] > 0 for op in operations) and tally["hostile"] > 0
    assert "Traceback" not in live.text(), live.text()
