"""Contract fuzzing: schemathesis against the OpenAPI schema served by a live server.

Every operation of ``/openapi.json`` gets generated requests, valid and invalid data, each
sent with no key, a wrong key, a client key and the admin key. Every answer must be a
non-5xx, documented in the schema, with a body that matches it (schemathesis's default
checks, with its auth probes). Run with ``-s`` to see the case counts.

``positive_data_acceptance`` is left out: some rules are not expressible in a JSON schema
(``min_price <= max_price``, a product event needs a ``product_id``, popularity windows
depend on the loaded bundle); those answer a documented 422 with a sentence.

(The operations are driven through ``APIOperation.as_strategy`` with Hypothesis directly:
schemathesis's ``pytest.from_fixture`` does not work with pytest 9.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.reliability.conftest import ADMIN, CLIENT, Server, server_env

pytestmark = pytest.mark.slow
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 10}  # per operation
KEYS = {"none": {}, "wrong": {"X-API-Key": "not-a-key"}, "client": CLIENT, "admin": ADMIN}


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
        tally[operation.label] += 1

    run()


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
          f"{ {k: v for k, v in sorted(tally.items()) if k.isdigit()} }")
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert all(tally[op.label] > 0 for op in operations)
    assert "Traceback" not in live.text(), live.text()
