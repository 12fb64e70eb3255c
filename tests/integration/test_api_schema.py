"""Schemathesis over the whole OpenAPI document of the running API (uvicorn on a real port,
the real Kafka, Redis and Neo4j), anonymous and with each kind of credential: no 5xx, and
every answer's status, content type, headers and body as the document says."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.specs.openapi.schemas import OpenApiSchema

from schemas.settings import Settings
from search.client import ensure_product_index, opensearch_client
from tests.credentials import admin_headers, producer_headers
from tests.flow_processes import free_port
from tests.served import serve_api

pytestmark = pytest.mark.integration

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
EXAMPLES = 6  # per operation and mode, each sent with 4 credentials: about a minute on 2 cores


@pytest.fixture(scope="module")
def served(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    rid = uuid.uuid4().hex[:6]
    settings = stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}schema{rid}:",
            "registry_dir": tmp_path_factory.mktemp("registry"),
            "api_port": free_port(),
            "search_index": f"test-schema{rid}-products",
        }
    )
    # as in a running shop, the product index exists (an empty one): without it /search
    # answers its documented 503 and the "no server error" check would count that
    with opensearch_client(settings) as client:
        ensure_product_index(client, settings)
    try:
        with serve_api(settings):
            yield settings
    finally:
        with opensearch_client(settings) as client:
            client.indices.delete(index=settings.search_index, ignore_unavailable=True)


@pytest.fixture(scope="module")
def api_schema(served: Settings) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{served.api_port}/openapi.json")


@pytest.fixture(scope="module")
def credentials(served: Settings) -> dict[str, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{served.api_port}/session", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        session = orjson.loads(answer.read())
    return {
        "anonymous": {},
        "admin": admin_headers(served, ("admin:read", "admin:write")),
        "producer": producer_headers(served),
        "shopper": {"Authorization": f"Bearer {session['access_token']}"},
    }


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_documented(
    api_schema: OpenApiSchema, credentials: dict[str, dict[str, str]], mode: GenerationMode
) -> None:
    """Each operation, valid (positive) and invalid (negative) inputs, each credential."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            for headers in credentials.values():
                case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing invalid to send
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001  (report them all)
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
