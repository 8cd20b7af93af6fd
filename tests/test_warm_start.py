"""The server's start-up warm-up (serve.py, ui/warm_start.py; issue 15's first visit).

Each check runs ``warm()`` in a fresh interpreter: what it imports is only visible against a
process that has imported nothing yet, and pytest's own has imported everything.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from streamlit.web.server.app_discovery import discover_asgi_app

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from ui import nodelay
from ui.warm_start import MODULES, warm
warm()
print(json.dumps({"modules": [m for m in MODULES if m not in sys.modules],
                  "requests_cache": "requests_cache" in sys.modules,
                  "pandas": "pandas" in sys.modules, "nodelay": nodelay.installed()}))
"""


def _warm_in_fresh_process(tmp_path: Path, **env: str) -> tuple[dict, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    environ.update(CM_DATA_DIR=str(tmp_path / "data"), CM_SECRETS_PATH=str(tmp_path / "none.toml"), **env)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_serve_py_is_the_app_behind_an_asgi_entry_with_a_start_up_hook_and_its_middlewares():
    found = discover_asgi_app(ROOT / "serve.py")
    assert found.is_asgi_app and found.import_string == "serve:app"
    calls = [n for n in ast.walk(ast.parse((ROOT / "serve.py").read_text(encoding="utf-8")))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "App"]
    (call,) = calls
    assert isinstance(call.args[0], ast.Constant) and call.args[0].value == "app.py"
    assert [k.arg for k in call.keywords] == ["lifespan", "middleware"]
    assert "Middleware(DeepLinkPrefetch)" in ast.unparse(call.keywords[1].value)
    assert "Middleware(StaticAssets)" in ast.unparse(call.keywords[1].value)  # the frontend files from memory


def test_warm_imports_what_the_first_page_needs_and_not_the_bulk_pages_libraries(tmp_path):
    seen, _ = _warm_in_fresh_process(tmp_path)
    assert seen == {"modules": [], "requests_cache": True, "pandas": False, "nodelay": True}
    assert (tmp_path / "data").is_dir()  # the settings database was opened (created) at start


def test_a_database_that_is_not_reachable_at_start_is_logged_not_raised_and_no_password_shows(tmp_path):
    seen, stderr = _warm_in_fresh_process(
        tmp_path, CM_DATABASE_URL="postgresql+psycopg://cm:pw-s3cret@127.0.0.1:1/cm")
    assert seen["modules"] == [] and seen["nodelay"]
    assert "warming up at start failed" in stderr
    assert "pw-s3cret" not in stderr
