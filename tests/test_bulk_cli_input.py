"""``python -m cmlib bulk`` (a subprocess, as a user runs it) on the inputs of issue 10: an
internationalised domain is looked up in ASCII, a non-ASCII local part, markup and a quoted
local part are invalid rows with their reason, a copied WORD JOINER does not matter, and a
KOI8-R file is read as KOI8-R."""
from __future__ import annotations

import codecs
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bulk(args, sandbox, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    env.update(CM_DATA_DIR=str(tmp_path / "cli-data"), CM_SECRETS_PATH=str(tmp_path / "none.toml"),
               CM_API_URL=sandbox.base_url, CM_API_KEY=sandbox.client_api_key, CM_CLIENT_ID=sandbox.main_client_id)
    return subprocess.run([sys.executable, "-m", "cmlib", "bulk", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def read_out(path: Path, delimiter=","):
    text = path.read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]


def test_bulk_rows_get_the_lookup_verdicts(sandbox, tmp_path):
    src = tmp_path / "in.csv"
    cells = ["anna\u2060@example.com", "user@bücher.de", "андрей@пример.рф", "<script>alert(1)</script>@example.com",
             "\"o'brien\"@example.com"]
    src.write_text("email\n" + "\n".join('"' + c.replace('"', '""') + '"' for c in cells) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    r = run_bulk([str(src), "-o", str(out), "-q"], sandbox, tmp_path)
    assert r.returncode == 3, r.stderr  # invalid rows are error rows, still written
    assert "Traceback" not in r.stderr
    rows = read_out(out)
    anna, idn, cyr, markup, quoted = rows
    assert anna["Email"] == "anna@example.com" and anna["Status"] == "ok"
    assert idn["Email"] == "user@xn--bcher-kva.de" and idn["Status"] == "ok"  # not "Code 1: Invalid Email"
    assert cyr["Status"] == "invalid" and "non-ASCII" in cyr["Error"]
    assert markup["Status"] == "invalid" and "“<” or “>”" in markup["Error"]
    assert quoted["Status"] == "invalid" and "quotes" in quoted["Error"]


def test_koi8r_file_is_read_as_koi8r(sandbox, tmp_path):
    src = tmp_path / "koi8.csv"
    src.write_bytes("Имя;Почта\nИван Петров;anna@example.com\n".encode("koi8-r"))
    out = tmp_path / "out.csv"
    r = run_bulk([str(src), "-o", str(out)], sandbox, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "KOI8-R" in r.stdout + r.stderr
    (row,) = read_out(out, delimiter=";")
    assert row["Имя"] == "Иван Петров" and row["Status"] == "ok"
    assert out.read_bytes().startswith(codecs.BOM_UTF8)
