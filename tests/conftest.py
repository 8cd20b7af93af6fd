"""Shared fixtures: an isolated data folder and clean environment for every test."""
from __future__ import annotations

import pytest

# The sandbox fixtures (sandbox, cm, raw, createsend_auth, app_env) for every test module, without
# a re-import in each one (a re-import shadows the fixture parameter and hides real mistakes).
pytest_plugins = ["tests.sandbox_fixtures", "tests.servers"]

_CM_VARS = ("CM_API_KEY", "CM_CLIENT_ID", "CM_API_URL", "CM_ADMIN_PASSWORD", "CM_CACHE_BACKEND", "CM_AUDIT_DB",
            "CM_BULK_MAX_MB", "CM_BULK_MAX_ROWS", "CM_REDIS_URL", "CM_DATABASE_URL", "CM_CACHE_SALT",
            "CM_LANGUAGE")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test may read the developer's real settings, secrets or cache."""
    for var in _CM_VARS:
        monkeypatch.delenv(var, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("CM_DATA_DIR", str(data))
    monkeypatch.setenv("CM_SECRETS_PATH", str(tmp_path / "no-secrets.toml"))


@pytest.fixture(autouse=True)
def _fresh_circuit_breakers():
    """Breakers and rate budgets are per credential and process-wide: a sandbox of a later test
    may reuse the port (and the demo keys) of one an earlier test put down, and a test must not
    inherit an earlier test's pacing."""
    from cmlib.breaker import reset_breakers
    from cmlib.ratelimit import reset_rate_budgets

    reset_breakers()
    reset_rate_budgets()
    yield
    reset_breakers()
    reset_rate_budgets()


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    try:
        import streamlit as st

        st.cache_data.clear()
        st.cache_resource.clear()
    except Exception:
        pass



@pytest.fixture(autouse=True)
def _fresh_deployment():
    """Shared-store clients (Redis, database engines and pools) are per process and keyed by the
    environment a test sets: close them after each test so none leaks into the next."""
    yield
    from cmlib.deployment import reset_for_tests

    reset_for_tests()
