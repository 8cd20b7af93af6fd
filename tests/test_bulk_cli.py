"""``python -m cmlib bulk``: every row written in input order, safe cells, exit codes, progress."""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cmlib.bulk.engine import BulkLookup, LookupResult
from cmlib.bulk_cli import Tuning, _Memo, main
from cmlib.retry import RetryPolicy
from cmlib.states import state_word

ROOT = Path(__file__).resolve().parent.parent
# Quick backoff and re-pass: the tests exercise the retries, not the wall clock.
QUICK = Tuning(retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total_wait=2.0,
                                 rate_limit_fallback=0.05), repass_delay=0.01)


@pytest.fixture
def env(sandbox, monkeypatch):
    monkeypatch.setenv("CM_API_KEY", sandbox.client_api_key)
    monkeypatch.setenv("CM_CLIENT_ID", sandbox.main_client_id)
    monkeypatch.setenv("CM_API_URL", sandbox.base_url)
    return sandbox


def read_out(path: Path, delimiter=","):
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF8), "Excel needs the BOM to read UTF-8"
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter))
    header = rows[0]
    return header, [dict(zip(header, r, strict=False)) for r in rows[1:]]


def truth(sb, email):
    """What a person reads per list: the product's word (subscribed, pending…)."""
    names = {lst.list_id: lst.name for lst in sb.data.lists_of(sb.main_client_id)}
    return {names[m.list_id]: state_word(m.state) for m in sb.data.memberships(sb.main_client_id, email)}


def api_truth(sb, email):
    """What a script reads in the "(API state)" columns: Campaign Monitor's own value."""
    names = {lst.list_id: lst.name for lst in sb.data.lists_of(sb.main_client_id)}
    return {names[m.list_id] + " (API state)": m.state for m in sb.data.memberships(sb.main_client_id, email)}


def test_cp1251_semicolon_file_streams_in_chunks_to_a_bom_csv_in_input_order(env, tmp_path):
    known = env.data.emails(env.main_client_id)[:9]
    lines = ["Имя;E-mail;Комментарий"]
    lines += [f"Клиент {i};{e};ok" for i, e in enumerate(known)]
    lines += ["Плохой;not-an-address;=1+1", "", f"Повтор;{known[0].upper()};@dup", "Никто;nobody@example.com;-"]
    src = tmp_path / "event.csv"
    src.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1251"))
    out = tmp_path / "out.csv"
    rc = main([str(src), "-o", str(out), "--chunk-size", "4", "--rate", "off", "-q"])
    assert rc == 3  # the invalid row is an error row (still written)
    header, rows = read_out(out, delimiter=";")  # same separator as the input
    assert header[:3] == ["Row", "Email", "Status"]
    list_names = [lst.name for lst in env.data.lists_of(env.main_client_id)]
    api_columns = [f"{name} (API state)" for name in list_names]
    # the input's other columns after ours, then one API-state column per list, last
    assert header[-len(list_names) - 2:] == ["Имя", "Комментарий", *api_columns]
    for name in list_names:
        assert name in header
    assert [r["Row"] for r in rows] == [str(i) for i in range(2, 11)] + ["11", "13", "14"]
    for i, e in enumerate(known):
        r = rows[i]
        assert r["Email"].lower() == e.lower() and r["Status"] == "ok" and r["Имя"] == f"Клиент {i}"
        got = {n: r[n] for n in list_names if r[n]}
        assert got == truth(env, e), e
        assert {c: r[c] for c in api_columns if r[c]} == api_truth(env, e), e
    bad, dup, nobody = rows[9], rows[10], rows[11]
    assert bad["Status"] == "invalid" and bad["Error"].startswith("Invalid address") and bad["Комментарий"] == "'=1+1"
    assert dup["Status"] == "duplicate" and dup["Error"] == "Duplicate of row 2" and dup["Комментарий"] == "'@dup"
    assert {n: dup[n] for n in list_names if dup[n]} == truth(env, known[0])  # across chunks
    assert nobody["On no list"] == "yes" and nobody["Комментарий"] == "'-"


def test_exit_0_when_every_row_has_a_result(env, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("email\nanna@example.com\nivan@example.com\nANNA@example.com\nnobody@example.com\n")
    out = tmp_path / "out.csv"
    assert main([str(src), "-o", str(out), "-q"]) == 0
    header, rows = read_out(out)
    assert [r["Status"] for r in rows] == ["ok", "ok", "duplicate", "ok"]
    assert "Other lists" in header


def test_with_activity_adds_the_activity_columns(env, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("anna@example.com\nnobody@example.com\n")
    out = tmp_path / "out.csv"
    assert main([str(src), "-o", str(out), "--with-activity", "--output-delimiter", "comma", "-q"]) == 0
    header, rows = read_out(out)
    for col in ("Campaigns received", "Open rate %", "Click rate %", "Last campaign", "Last campaign sent"):
        assert col in header
    assert int(rows[0]["Campaigns received"]) > 0 and rows[0]["Last campaign"]
    assert rows[1]["Campaigns received"] == "0"
    assert rows[0]["Email"] == "anna@example.com"
    # no header row in the input, so no other columns: the activity columns, then the API states
    lists = [lst.name for lst in env.data.lists_of(env.main_client_id)]
    assert header[-len(lists) - 1:] == ["Last campaign sent", *(f"{n} (API state)" for n in lists)]


def test_column_option_by_name_and_number(env, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("Primary,Backup\nanna@example.com,ivan@example.com\n")
    out = tmp_path / "out.csv"
    assert main([str(src), "-o", str(out), "--column", "Backup", "-q"]) == 0
    assert read_out(out)[1][0]["Email"] == "ivan@example.com"
    assert main([str(src), "-o", str(out), "--column", "1", "-q"]) == 0
    assert read_out(out)[1][0]["Email"] == "anna@example.com"


def test_faults_slow_the_run_but_every_row_is_written(env, tmp_path):
    known = env.data.emails(env.main_client_id)[:40]
    src = tmp_path / "in.csv"
    src.write_text("Email\n" + "\n".join(known) + "\n")
    env.set_faults(error_rate=0.2, malformed_rate=0.1, rate_limit="15/s", rate_limit_headers=False)
    out = tmp_path / "out.csv"
    rc = main([str(src), "-o", str(out), "--rate", "off", "--concurrency", "8", "-q"], QUICK)
    env.reset_faults()
    assert env.status_counts[429] > 0 and env.status_counts[500] > 0
    _, rows = read_out(out)
    assert [r["Email"].lower() for r in rows] == [e.lower() for e in known]
    for r, e in zip(rows, known, strict=False):
        assert r["Status"] in ("ok", "error")
        if r["Status"] == "error":
            assert e.lower() in r["Error"].lower()
    assert rc == (3 if any(r["Status"] == "error" for r in rows) else 0)


def test_progress_line_on_stderr(env, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("Email\n" + "\n".join(env.data.emails(env.main_client_id)[:30]) + "\n")
    assert main([str(src), "-o", str(tmp_path / "o.csv")]) == 0
    err = capsys.readouterr().err
    assert "\r30/30 rows (100%)" in err and "addresses/s" in err and "ETA" in err
    assert "Wrote 30 rows" in err and "30 API calls" not in err
    assert "32 API calls" in err  # 30 lookups + the lists call + one page of the suppression list
    assert env.client_api_key not in err


@pytest.mark.parametrize(("args", "message"), [
    ([], "required"),
    (["{missing}", "-o", "{out}"], "No such file"),
    (["{binary}", "-o", "{out}"], "not a CSV"),
    (["{noemail}", "-o", "{out}"], "no column with email addresses"),
    (["{good}", "-o", "{out}", "--column", "Nope"], "no column named"),
    (["{good}", "-o", "{out}", "--concurrency", "0"], "at least 1"),
    (["{good}", "-o", "{out}", "--rate", "fast"], "requests per second"),
    (["{good}", "-o", "{tmp}/no/such/dir/out.csv"], "does not exist"),
    (["{good}", "-o", "{good}"], "must not be the input"),
    (["{good}", "-o", "{out}", "--max-rows", "1"], "--max-rows"),
    (["{good}", "-o", "{tmp}"], "is a folder: give the name of the file to write"),
    (["{good}", "-o", "{out}", "--patience", "soon"], "expected seconds"),
])
def test_bad_arguments_and_input_exit_2(env, tmp_path, capsys, args, message):
    files = {
        "missing": tmp_path / "missing.csv",
        "binary": tmp_path / "photo.csv",
        "noemail": tmp_path / "names.csv",
        "good": tmp_path / "good.csv",
        "out": tmp_path / "out.csv",
        "tmp": tmp_path,
    }
    files["binary"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    files["noemail"].write_text("Name;City\nIvan;Moscow\n")
    files["good"].write_text("Email\na@example.com\nb@example.com\n")
    argv = [a.format(**files) for a in args]
    assert main(argv) == 2
    assert message.lower() in capsys.readouterr().err.lower()


def test_rejected_credentials_exit_1_without_output(env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CM_API_KEY", "definitely-wrong-key")
    src = tmp_path / "in.csv"
    src.write_text("a@example.com\n")
    out = tmp_path / "out.csv"
    assert main([str(src), "-o", str(out), "-q"]) == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert "authentication failed" in err and "definitely-wrong-key" not in err


def test_memo_shares_membership_only_results():
    memo = _Memo()
    a = LookupResult("a@x.com", (("L1", "Active"),))
    b = LookupResult("b@x.com", (("L1", "Active"),))
    memo.keep("a@x.com", a)
    memo.keep("b@x.com", b)
    assert memo["a@x.com"] is memo["b@x.com"] and memo["a@x.com"].email == ""
    failed = LookupResult("c@x.com", error="boom")
    memo.keep("c@x.com", failed)
    assert memo["c@x.com"] is failed


def _subprocess_env(sb, tmp_path):
    e = dict(os.environ, CM_API_KEY=sb.client_api_key, CM_CLIENT_ID=sb.main_client_id, CM_API_URL=sb.base_url,
             CM_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    return e


def test_python_dash_m_cmlib_bulk(sandbox, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("Email\nanna@example.com\nbroken\n")
    out = tmp_path / "out.csv"
    r = subprocess.run([sys.executable, "-m", "cmlib", "bulk", str(src), "-o", str(out)], cwd=ROOT,
                       env=_subprocess_env(sandbox, tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    _, rows = read_out(out)
    assert [r_["Status"] for r_ in rows] == ["ok", "invalid"]


def _watch_progress(proc: subprocess.Popen, rows: int, seen: list[str],
                    reported: list[int]) -> tuple[threading.Event, threading.Thread]:
    """An event set once the CLI's own progress line on stderr reports ``rows`` rows done (or
    the process ended), and the thread reading it.

    Reads the pipe as the process writes it (no polling of the clock or the file system); the
    count that set the event goes to ``reported``, everything read to ``seen`` once the
    thread is done.
    """
    reached = threading.Event()
    pattern = re.compile(r"(\d+)/\d+ rows \(")  # the pipe is read in text mode: "\r" arrives as "\n"

    def read() -> None:
        text = ""
        while True:
            ch = proc.stderr.read(1)
            if not ch:
                break
            text += ch
            if not reached.is_set() and ch == " ":
                done = [int(n) for n in pattern.findall(text)]
                if done and max(done) >= rows:
                    reported.append(max(done))
                    reached.set()
        seen.append(text)
        reached.set()  # the process ended: nothing more will come

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reached, reader


def test_ctrl_c_finishes_in_flight_lookups_and_still_writes_every_row(sandbox, tmp_path):
    sandbox.set_faults(latency_ms=150)
    emails = sandbox.data.emails(sandbox.main_client_id)[:300]
    src = tmp_path / "in.csv"
    src.write_text("Email\n" + "\n".join(emails) + "\n")
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "-m", "cmlib", "bulk", str(src), "-o", str(out), "--concurrency", "2",
                             "--chunk-size", "50"], cwd=ROOT, env=_subprocess_env(sandbox, tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    reported: list[int] = []
    reached, reader = _watch_progress(proc, 20, seen, reported)
    try:
        assert reached.wait(60), "no progress line"
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(10)
    err = "".join(seen)
    assert proc.returncode == 3, err
    _, rows = read_out(out)
    assert [r["Email"].lower() for r in rows] == [e.lower() for e in emails]
    statuses = [r["Status"] for r in rows]
    assert reported and statuses.count("ok") >= reported[0] >= 20  # every lookup done before Ctrl-C is kept
    assert "not run" in statuses
    assert {r["Error"] for r in rows if r["Status"] == "not run"} == {"Not looked up: the run was cancelled (Ctrl-C)"}
    assert "Traceback" not in err


def test_an_output_folder_is_refused_before_any_lookup(env, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("Email\n" + "\n".join(env.data.emails(env.main_client_id)[:20]) + "\n")
    env.reset_counts()
    assert main([str(src), "-o", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is a folder" in err and "Traceback" not in err
    assert env.requests_served == 0  # checked first: not one call, not after every lookup


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_output_folder_is_refused_before_any_lookup(env, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("Email\na@example.com\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        env.reset_counts()
        assert main([str(src), "-o", str(locked / "out.csv"), "-q"]) == 2
    finally:
        locked.chmod(0o700)
    assert "not writable" in capsys.readouterr().err and env.requests_served == 0


def test_the_api_dying_mid_run_ends_promptly_with_a_clear_message(env, tmp_path, capsys, monkeypatch):
    """Before: 2,000 rows with the server killed retried for 13 minutes (15,321 calls). Now the
    breaker opens after a few failures, the run pauses (said on stderr at once) and, out of
    patience, stops: every row written, those after the outage "not looked up", none failed."""
    emails = env.data.emails(env.main_client_id)[:400]
    src = tmp_path / "in.csv"
    src.write_text("Email\n" + "\n".join(emails) + "\n")
    out = tmp_path / "out.csv"
    served_at_kill = []
    lookups = itertools.count(1)
    real_lookup = BulkLookup.lookup

    def lookup(self, email, cancel=None):
        if next(lookups) == 40:  # the 40th address: the API dies under the run
            env.set_faults(down=True)
            served_at_kill.append(env.requests_served)
        return real_lookup(self, email, cancel)

    monkeypatch.setattr(BulkLookup, "lookup", lookup)
    rc = main([str(src), "-o", str(out), "--rate", "off", "--concurrency", "4", "--chunk-size", "100",
               "--patience", "0"], QUICK)
    err = capsys.readouterr().err
    assert rc == 3, err
    assert served_at_kill and env.requests_served - served_at_kill[0] <= 30  # a handful, not thousands
    assert "Campaign Monitor is not answering since " in err and "rows waiting" in err
    assert "the run stopped after waiting 0 s" in err and "rows were not looked up" in err
    assert "Traceback" not in err and env.client_api_key not in err
    _, rows = read_out(out)
    assert [r["Email"].lower() for r in rows] == [e.lower() for e in emails]  # every row written
    statuses = [r["Status"] for r in rows]
    assert "error" not in statuses  # nothing "failed" because of the outage
    assert statuses.count("ok") >= 10 and statuses.count("not run") >= 300
    not_run = {r["Error"] for r in rows if r["Status"] == "not run"}
    assert len(not_run) == 1 and next(iter(not_run)).startswith("Not looked up: Campaign Monitor is not answering")


def test_the_retry_policy_it_is_given_is_the_one_its_client_uses(env, tmp_path):
    """The internal Tuning reaches the client: with every answer a 500 and two attempts per
    call, each address costs exactly two calls (the default policy would make five, with
    seconds of backoff)."""
    src = tmp_path / "in.csv"
    src.write_text("Email\n" + "\n".join(env.data.emails(env.main_client_id)[:5]) + "\n")
    env.set_faults(error_rate=1.0)
    env.reset_counts()
    two = Tuning(retry=RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0))
    assert main([str(src), "-o", str(tmp_path / "out.csv"), "--rate", "off", "--no-repass", "-q"], two) == 3
    assert env.request_counts["listsforemail"] == 10


def test_the_cli_file_says_who_is_suppressed_since_when_and_why(env, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("Email\nsuppressed@example.com\nanna@example.com\nSUPPRESSED@example.com\n")
    out = tmp_path / "o.csv"
    env.reset_counts()
    assert main([str(src), "-o", str(out)], QUICK) == 0
    assert env.request_counts["suppressionlist"] == 1  # one pass, whatever the file's size
    header, rows = read_out(out)
    assert header.index("Suppressed since") < header.index("Error")
    entry = next(e for e in env.data.suppression(env.main_client_id) if e.email == "suppressed@example.com")
    assert rows[0]["Suppression reason"] == "Unsubscribed"
    assert rows[0]["Suppressed since"] == entry.date.isoformat(sep=" ", timespec="seconds")  # ISO 8601
    assert rows[2]["Suppression reason"] == "Unsubscribed"  # the duplicate row too
    assert rows[1]["Suppressed since"] == "" and rows[1]["Suppression reason"] == ""
    assert "2 on the suppression list" in capsys.readouterr().err
