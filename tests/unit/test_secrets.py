"""Secrets (issue 11, item 6): the published development secrets need the development flag, and
each process of the stack and of compose.yaml is given only the secrets it needs. No I/O."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.config import (
    DEV_INTERNAL_SECRET,
    DEV_MODE_FLAG,
    MIN_SECRET_LENGTH,
    PUBLISHED_DEV_SECRETS,
    ConfigError,
    load_config,
)
from shared.tokens import DEV_JWT_SECRET, issue_token
from stack.system import SECRET_HOLDERS, process_env

REPO = Path(__file__).resolve().parents[2]
REAL_INTERNAL = "unit-internal-secret-0123456789abcdef-0123"
REAL_JWT = "unit-jwt-secret-0123456789abcdef-0123456789"
WITH_JWT = {"JWT_SECRET": DEV_JWT_SECRET}  # the defaults of auth and the gateway


@pytest.mark.parametrize("environ, named", [
    ({}, "INTERNAL_SECRET"),
    ({"INTERNAL_SECRET": DEV_INTERNAL_SECRET}, "INTERNAL_SECRET"),
    ({"INTERNAL_SECRET": REAL_INTERNAL}, "JWT_SECRET"),
    ({"INTERNAL_SECRET": REAL_INTERNAL, "JWT_SECRET": DEV_JWT_SECRET}, "JWT_SECRET"),
    ({"INTERNAL_SECRET": REAL_INTERNAL, DEV_MODE_FLAG: "false"}, "JWT_SECRET"),
])
def test_published_secrets_are_refused_without_the_development_flag(environ, named):
    with pytest.raises(ConfigError, match=f"^{named} is the published development secret.*{DEV_MODE_FLAG}=true"):
        load_config(WITH_JWT, environ=environ)


def test_published_secrets_are_accepted_with_the_development_flag():
    config = load_config(WITH_JWT, environ={DEV_MODE_FLAG: "true"})
    assert config["INTERNAL_SECRET"] == DEV_INTERNAL_SECRET and config["JWT_SECRET"] == DEV_JWT_SECRET
    assert load_config(WITH_JWT, {DEV_MODE_FLAG: True}, environ={})[DEV_MODE_FLAG] is True


def test_real_secrets_need_no_flag():
    config = load_config(WITH_JWT, environ={"INTERNAL_SECRET": REAL_INTERNAL, "JWT_SECRET": REAL_JWT})
    assert config["INTERNAL_SECRET"] == REAL_INTERNAL and config["JWT_SECRET"] == REAL_JWT and not config[DEV_MODE_FLAG]
    # overrides (how tests build apps) count, not only the environment
    assert load_config(WITH_JWT, {"INTERNAL_SECRET": REAL_INTERNAL, "JWT_SECRET": REAL_JWT}, environ={})


def test_a_process_without_jwt_secret_is_not_asked_for_one():
    assert "JWT_SECRET" not in load_config({}, environ={"INTERNAL_SECRET": REAL_INTERNAL})


def test_a_process_may_hold_no_secret_at_all():
    # the operator CLI: given the secrets or not, it keeps none
    for environ in ({}, {"INTERNAL_SECRET": REAL_INTERNAL, "JWT_SECRET": REAL_JWT}):
        config = load_config(WITH_JWT, {"JWT_SECRET": REAL_JWT}, environ=environ, without=PUBLISHED_DEV_SECRETS)
        assert not set(PUBLISHED_DEV_SECRETS) & set(config)


def test_a_process_without_jwt_secret_cannot_issue_tokens():
    with pytest.raises(ValueError, match="JWT_SECRET"):
        issue_token(user_id=1, username="ann", secret="", ttl_seconds=60)


@pytest.mark.parametrize("value, problem", [("", "is not set"), ("short-secret", f"is shorter than {MIN_SECRET_LENGTH}")])
def test_empty_and_short_secrets_are_refused(value, problem):
    with pytest.raises(ConfigError, match=f"INTERNAL_SECRET {problem}"):
        load_config({}, environ={"INTERNAL_SECRET": value})
    with pytest.raises(ConfigError, match="JWT_SECRET is not set"):
        load_config(WITH_JWT, environ={"INTERNAL_SECRET": REAL_INTERNAL, "JWT_SECRET": "", DEV_MODE_FLAG: "true"})


def test_the_flag_must_be_a_boolean():
    with pytest.raises(ConfigError, match=f"{DEV_MODE_FLAG} must be a boolean"):
        load_config({}, environ={DEV_MODE_FLAG: "please"})


# -- which process holds which secret ------------------------------------------------------------

STACK_PROCESSES = ["auth", "auth-worker", "neo", "neo-worker", "metadata", "metadata-worker", "files",
                   "files-worker", "acl", "acl-worker", "gateway"]


def test_the_stack_gives_jwt_secret_only_to_auth_and_the_gateway():
    env = {"JWT_SECRET": REAL_JWT, "INTERNAL_SECRET": REAL_INTERNAL, "SMTP_PASSWORD": "mail", "PATH": "/usr/bin"}
    for process in STACK_PROCESSES:
        given = process_env(process, env)
        assert ("JWT_SECRET" in given) == (process in {"auth", "gateway"}), process
        assert ("SMTP_PASSWORD" in given) == (process == "acl-worker"), process
        assert given["INTERNAL_SECRET"] == REAL_INTERNAL and given["PATH"] == "/usr/bin"
    assert set(SECRET_HOLDERS["JWT_SECRET"]) == {"auth", "gateway"}


def _compose_environments() -> dict[str, dict]:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())  # merge keys (<<) resolved
    return {name: dict(service.get("environment") or {}) for name, service in compose["services"].items()}


def test_compose_gives_jwt_secret_only_to_auth_and_the_gateway_and_no_development_flag():
    environments = _compose_environments()
    holders = {name for name, env in environments.items() if "JWT_SECRET" in env}
    assert holders == {"auth", "gateway"}
    for name, env in environments.items():
        assert DEV_MODE_FLAG not in env, name
        if name not in {"mongodb", "rabbitmq"}:
            assert "INTERNAL_SECRET" in env, name
        assert ("SMTP_PASSWORD" in env) == (name == "acl-worker"), name
    assert "AMQP_URL" not in environments["gateway"]  # the broker's password neither


def test_the_image_sets_no_secret_and_no_development_flag():
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if line and not line.startswith("#")]
    for word in (DEV_MODE_FLAG, "JWT_SECRET", "INTERNAL_SECRET"):
        assert not any(word in line for line in instructions), word
