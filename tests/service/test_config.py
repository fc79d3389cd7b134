"""Settings: env prefix, dev defaults, and refusal of dev secrets outside dev."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.config import DEV_API_KEYS, Settings, get_settings, hash_api_key

STRONG = "a-production-secret-of-32-bytes!"


def test_env_prefix_and_json_fields(monkeypatch, tmp_path):
    monkeypatch.setenv("NBI_STORE", "redis")
    monkeypatch.setenv("NBI_CONTROL_SHARE", "0.3")
    monkeypatch.setenv("NBI_POLICY_PARAMS", '{"epsilon": 0.1}')
    monkeypatch.setenv("NBI_SQLITE_PATH", str(tmp_path / "x.db"))
    s = Settings()
    assert (s.store, s.control_share, s.policy_params) == ("redis", 0.3, {"epsilon": 0.1})
    assert s.sqlite_path == tmp_path / "x.db"


def test_get_settings_is_cached():
    get_settings.cache_clear()
    assert get_settings() is get_settings()
    get_settings.cache_clear()


def test_dev_defaults_work_in_dev_and_match_the_documented_keys():
    s = Settings()
    assert s.environment == "dev"
    for role, key in DEV_API_KEYS.items():
        assert s.api_keys[role] == [hash_api_key(key)]


@pytest.mark.parametrize("missing", ["pseudonym_key", "experiment_salt", "api_keys"])
def test_outside_dev_each_dev_default_is_refused(missing):
    values = {
        "environment": "prod",
        "pseudonym_key": STRONG,
        "experiment_salt": STRONG,
        "api_keys": {"case": [hash_api_key(STRONG)]},
    }
    del values[missing]
    with pytest.raises(ValidationError, match=missing):
        Settings(**values)


def test_prod_with_own_secrets_is_accepted_and_secrets_are_hidden():
    s = Settings(
        environment="prod",
        pseudonym_key=STRONG,
        experiment_salt=STRONG,
        api_keys={"case": [hash_api_key(STRONG)]},
    )
    assert STRONG not in repr(s)


@pytest.mark.parametrize(
    "bad",
    [
        {"api_keys": {"root": [hash_api_key("x")]}},
        {"api_keys": {"case": ["plain-text-key"]}},
        {"pseudonym_key": "short"},
        {"control_share": 1.0},
        {"store": "postgres"},
        {"floor": -0.1},
    ],
)
def test_invalid_settings_are_refused(bad):
    with pytest.raises(ValidationError):
        Settings(**bad)


def test_model_approval_default_follows_the_environment():
    """dev shows learning at once; a deployment is governed; an explicit setting wins."""
    assert Settings(_env_file=None).model_approval == "auto"
    prod = {
        "environment": "prod",
        "pseudonym_key": STRONG,
        "experiment_salt": STRONG,
        "api_keys": {"case": [hash_api_key(STRONG)]},
    }
    assert Settings(_env_file=None, **prod).model_approval == "manual"
    assert (
        Settings(
            _env_file=None,
            environment="test",
            **{k: v for k, v in prod.items() if k != "environment"},
        ).model_approval
        == "manual"
    )
    assert Settings(_env_file=None, model_approval="manual").model_approval == "manual"
    assert Settings(_env_file=None, **prod, model_approval="auto").model_approval == "auto"
