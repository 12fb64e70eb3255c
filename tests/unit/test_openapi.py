"""The OpenAPI schema describes every HTTP route with a summary and typed responses."""

from __future__ import annotations

from api.main import create_app
from schemas.settings import Settings

EXPECTED = {
    ("get", "/prices/{sku}"),
    ("get", "/prices"),
    ("get", "/recommendations/{user_id}"),
    ("get", "/products"),
    ("get", "/pricing/{sku}"),
    ("post", "/events/{topic}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/admin/token"),
    ("get", "/admin/models"),
    ("post", "/admin/models/{name}/promote"),
    ("post", "/admin/models/{name}/rollback"),
    ("get", "/admin/jobs"),
    ("get", "/admin/governance"),
    ("post", "/admin/jobs/{job}"),
    ("get", "/admin/drift"),
    ("get", "/graph/products/{sku}/related"),
    ("get", "/graph/products/{sku}/influence"),
    ("post", "/oauth/token"),
    ("post", "/session"),
    ("get", "/search"),
}


def test_every_route_is_described() -> None:
    schema = create_app(Settings()).openapi()
    found = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert found == EXPECTED  # pages and websockets are not part of the HTTP API schema
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method} {path} has no summary"
            ok = op["responses"].get("200") or op["responses"].get("202")
            assert ok, f"{method} {path} has no success response"
            if path != "/metrics":
                assert "schema" in ok["content"]["application/json"], f"{method} {path}"


def test_admin_routes_declare_oauth2_with_scopes() -> None:
    schema = create_app(Settings()).openapi()
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert set(flows["password"]["scopes"]) == {"admin:read", "admin:write"}
    promote = schema["paths"]["/admin/models/{name}/promote"]["post"]
    assert promote["security"] == [{"OAuth2PasswordBearer": ["admin:write"]}]


def test_reads_of_a_shopper_and_writes_of_events_declare_their_credentials() -> None:
    schema = create_app(Settings()).openapi()
    for path, method in (("/recommendations/{user_id}", "get"), ("/events/{topic}", "post")):
        op = schema["paths"][path][method]
        assert {"HTTPBearer", "APIKeyCookie"} <= {k for s in op["security"] for k in s}, path
        assert {"401", "403", "429"} <= set(op["responses"]), path


def test_routes_that_send_ready_json_still_document_their_model() -> None:
    """The hot routes return pre-encoded JSON; their 200 must still name the model it holds."""
    paths = create_app(Settings()).openapi()["paths"]

    def schema(path: str) -> dict[str, object]:
        ok = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        return dict(ok)

    assert schema("/prices/{sku}") == {"$ref": "#/components/schemas/PriceView"}
    assert schema("/prices")["additionalProperties"] == {"$ref": "#/components/schemas/PriceView"}
    assert schema("/recommendations/{user_id}") == {"$ref": "#/components/schemas/Recommendations"}
