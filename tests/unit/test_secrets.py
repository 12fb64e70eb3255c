"""Outside development, the API, the flows and the scheduler refuse development, empty or short
secrets, and say which variable to set."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from api.main import create_app
from api.passwords import hash_secret
from batch.scheduler import Scheduler
from schemas.settings import DEV_ADMIN_PASSWORD, DEV_JWT_SECRET, InsecureSettings, Settings

STRONG = "s" * 32


def settings(environment: str, jwt: str = STRONG, password: str = STRONG, **more: str) -> Settings:
    extra = {k: SecretStr(v) for k, v in more.items()}
    return Settings(
        environment=environment,  # type: ignore[arg-type]
        jwt_secret=SecretStr(jwt),
        admin_password=SecretStr(password),
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize(
    ("jwt", "password", "variable"),
    [
        (DEV_JWT_SECRET, STRONG, "TILLFLOW_JWT_SECRET: the development default"),
        ("", STRONG, "TILLFLOW_JWT_SECRET: it is empty or shorter than 32 bytes"),
        ("s" * 31, STRONG, "TILLFLOW_JWT_SECRET: it is empty or shorter than 32 bytes"),
        (STRONG, DEV_ADMIN_PASSWORD, "TILLFLOW_ADMIN_PASSWORD: the development default"),
        (STRONG, "", "TILLFLOW_ADMIN_PASSWORD: it is empty or shorter than 32 bytes"),
        (STRONG, "é" * 15, "TILLFLOW_ADMIN_PASSWORD: it is empty or shorter than 32 bytes"),
    ],
)
def test_weak_secrets_are_refused_outside_development(
    environment: str, jwt: str, password: str, variable: str
) -> None:
    weak = settings(environment, jwt, password)
    with pytest.raises(InsecureSettings, match=f"set {variable}"):
        weak.require_safe_secrets()
    with pytest.raises(InsecureSettings, match=f"environment={environment}"):
        create_app(weak)
    with pytest.raises(InsecureSettings):
        Scheduler(weak, {})


def test_development_keeps_its_defaults_and_strong_secrets_pass_everywhere() -> None:
    Settings().require_safe_secrets()
    settings("production").require_safe_secrets()
    assert settings("production", DEV_JWT_SECRET, DEV_ADMIN_PASSWORD).secret_problems() == [
        "set TILLFLOW_JWT_SECRET: the development default is refused",
        "set TILLFLOW_ADMIN_PASSWORD: the development default is refused "
        "(or set TILLFLOW_ADMIN_PASSWORD_HASH)",
    ]


def test_an_admin_password_hash_replaces_the_plain_password() -> None:
    hashed = settings("production", password="", admin_password_hash=hash_secret("x" * 40))
    hashed.require_safe_secrets()
    not_a_hash = settings("development", admin_password_hash="plain-text")
    with pytest.raises(InsecureSettings, match="TILLFLOW_ADMIN_PASSWORD_HASH to an argon2 hash"):
        not_a_hash.require_safe_secrets()


def test_the_flows_refuse_weak_secrets_before_touching_a_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.run import flow_from_env

    monkeypatch.setenv("TILLFLOW_ENVIRONMENT", "production")
    monkeypatch.setenv("TILLFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:1")  # never reached
    monkeypatch.delenv("TILLFLOW_JWT_SECRET", raising=False)
    with pytest.raises(InsecureSettings, match="TILLFLOW_JWT_SECRET"):
        flow_from_env()
