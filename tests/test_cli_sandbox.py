"""The CLI as a user runs it: a subprocess against the sandbox (CM_API_URL) and in demo mode."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(args, env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    env.update(CM_DATA_DIR=str(tmp_path / "cli-data"), CM_SECRETS_PATH=str(tmp_path / "none.toml"), **env_extra)
    return subprocess.run([sys.executable, "-m", "cmlib", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_lookup_against_server_from_cm_api_url(sandbox, tmp_path):
    env = {"CM_API_URL": sandbox.base_url, "CM_API_KEY": sandbox.client_api_key,
           "CM_CLIENT_ID": sandbox.main_client_id}
    r = run_cli(["lookup", "anna@example.com", "maria+news@example.com", "nobody@example.com", "--json"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    doc = {d["email"]: d for d in json.loads(r.stdout)}
    anna = doc["anna@example.com"]
    expected = {m.list_name: m.state for m in sandbox.data.memberships(sandbox.main_client_id, "anna@example.com")}
    assert {x["list_name"]: x["state"] for x in anna["lists"]} == expected
    assert len(anna["campaigns"]) == 3 and anna["activity"]["received"] >= 3
    sents = [c["sent"] for c in anna["campaigns"]]
    assert sents == sorted(sents, reverse=True)
    assert doc["maria+news@example.com"]["lists"], "plus address must be URL-encoded and found"
    assert doc["nobody@example.com"]["lists"] == [] and doc["nobody@example.com"]["errors"] == []
    assert sandbox.client_api_key not in r.stdout + r.stderr


def test_wrong_key_exits_nonzero(sandbox, tmp_path):
    env = {"CM_API_URL": sandbox.base_url, "CM_API_KEY": "wrong-key-123456", "CM_CLIENT_ID": sandbox.main_client_id}
    r = run_cli(["lookup", "anna@example.com"], env, tmp_path)
    assert r.returncode == 1
    assert "Code 100" in r.stderr and "wrong-key-123456" not in r.stderr


def test_other_clients_id_is_code_102(sandbox, tmp_path):
    env = {"CM_API_URL": sandbox.base_url, "CM_API_KEY": sandbox.client_api_key,
           "CM_CLIENT_ID": sandbox.other_client_id}
    r = run_cli(["lookup", "anna@example.com"], env, tmp_path)
    assert r.returncode == 1 and "Code 102" in r.stderr


def test_demo_mode_without_credentials(tmp_path):
    r = run_cli(["lookup", "ivan@example.com", "ivan.work@example.org"], {}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Demo data" in r.stderr
    assert "== ivan@example.com" in r.stdout and "== ivan.work@example.org" in r.stdout
    assert "(Unsubscribed)" in r.stdout and "reason: Unsubscribe" in r.stdout


def test_one_failing_list_is_reported_not_fatal(sandbox, tmp_path):
    lid = sandbox.data.list_by_name(sandbox.main_client_id, "Offers").list_id
    sandbox.faults.fail_list_ids = {lid}
    env = {"CM_API_URL": sandbox.base_url, "CM_API_KEY": sandbox.client_api_key,
           "CM_CLIENT_ID": sandbox.main_client_id}
    r = run_cli(["lookup", "anna@example.com", "--json", "--no-cache"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    (anna,) = json.loads(r.stdout)
    assert any(e["list_name"] == "Offers" and "anna@example.com" in e["message"] for e in anna["errors"])
    assert len(anna["lists"]) == 3


def test_empty_address_argument_exits_2_with_a_message(tmp_path):
    r = run_cli(["lookup", ""], {}, tmp_path)
    assert r.returncode == 2
    assert "no email address given" in r.stderr and "Traceback" not in r.stderr


def test_internationalised_domain_is_looked_up_not_refused_by_the_api(sandbox, tmp_path):
    """Before: the Unicode domain went to the API, which answered Code 1 and the CLI exited 1."""
    env = {"CM_API_URL": sandbox.base_url, "CM_API_KEY": sandbox.client_api_key,
           "CM_CLIENT_ID": sandbox.main_client_id}
    r = run_cli(["lookup", "user@bücher.de", "--json", "--no-cache"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    (doc,) = json.loads(r.stdout)
    assert doc["email"] == "user@xn--bcher-kva.de" and doc["errors"] == [] and doc["lists"] == []
    assert "Code 1" not in r.stdout + r.stderr


def test_non_ascii_local_part_is_refused_with_the_reason(sandbox, tmp_path):
    env = {"CM_API_URL": sandbox.base_url, "CM_API_KEY": sandbox.client_api_key,
           "CM_CLIENT_ID": sandbox.main_client_id}
    r = run_cli(["lookup", "андрей@пример.рф"], env, tmp_path)
    assert r.returncode == 2
    assert "non-ASCII" in r.stderr and "Code 1" not in r.stderr


def test_sandbox_port_out_of_range_is_a_usage_error(tmp_path):
    for port in ("70000", "-1", "http"):
        r = run_cli(["sandbox", "--port", port], {}, tmp_path)
        assert r.returncode == 2, (port, r.stderr)
        assert "Traceback" not in r.stderr
        assert "--port" in r.stderr and port in r.stderr
    r = run_cli(["sandbox", "--hang-seconds", "-5"], {}, tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--hang-seconds" in r.stderr
