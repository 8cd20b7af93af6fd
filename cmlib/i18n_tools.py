"""Catalog maintenance with Babel: extract the messages used in code, merge translations, check.

``python -m cmlib.i18n extract``  writes ``locales/messages.pot`` from the code and updates every
                                 ``messages.po`` from it (new ids added empty, translations kept)
``python -m cmlib.i18n add F.po`` merges the translations in ``F.po`` into the Russian catalog
                                 (a file lock makes it safe when several people add at once)
``python -m cmlib.i18n check``    lists ids used in code that a catalog lacks, empty or fuzzy
                                 entries and placeholders that differ from the English
``python -m cmlib.i18n compile``  writes the ``.mo`` files (run by ``make`` at install)

Extraction looks for ``t("…")``, ``nt("…", "…", n)`` and ``N_("…")`` in app.py, pages/, ui/ and
cmlib/ (not the sandbox, whose texts are Campaign Monitor's own and are shown as they are).
"""
from __future__ import annotations

import ast
import fcntl
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .i18n import DOMAIN, LOCALES_DIR, Language, compile_all, po_path, reload_catalogs

ROOT = LOCALES_DIR.parent
KEYWORDS = {"t": None, "nt": (1, 2), "N_": None}
SOURCE_GLOBS = ("app.py", "pages/*.py", "ui/**/*.py", "cmlib/**/*.py")
EXCLUDED = ("cmlib/sandbox/", "cmlib/i18n.py", "cmlib/i18n_tools.py")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:[:!][^}]*)?\}")


def source_files(root: Path = ROOT) -> list[Path]:
    found: set[Path] = set()
    for pattern in SOURCE_GLOBS:
        found.update(root.glob(pattern))
    return sorted(p for p in found if not any(p.relative_to(root).as_posix().startswith(e) for e in EXCLUDED))


@dataclass(frozen=True)
class UsedMessage:
    """One message id found in code (``plural`` for :func:`cmlib.i18n.nt`)."""

    id: str
    plural: str | None
    where: str  # "path:line"


def _calls(tree: ast.AST) -> Iterator[tuple[int, str, str | None]]:
    """(line, message id, plural id) of every ``t("…")``, ``nt("…", "…", n)`` and ``N_("…")`` call,
    also ``later.t(…)`` and calls inside f-strings (which Babel's token-based extractor cannot see:
    since Python 3.12 an f-string is tokens, before that one string token)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name not in KEYWORDS or not node.args:
            continue
        texts = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args[:2]]
        if texts[0] is None:
            continue
        plural = texts[1] if name == "nt" and len(texts) > 1 else None
        yield node.lineno, texts[0], plural


def used_messages(root: Path = ROOT) -> list[UsedMessage]:
    out = []
    for path in source_files(root):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(root).as_posix()
        for lineno, message, plural in sorted(_calls(tree), key=lambda c: (c[0], c[1])):
            if message:
                out.append(UsedMessage(message, plural, f"{where}:{lineno}"))
    return out


def template(root: Path = ROOT):
    from babel.messages.catalog import Catalog

    cat = Catalog(project="cm-dashboard", domain=DOMAIN, charset="utf-8")
    for used in used_messages(root):
        msgid = (used.id, used.plural) if used.plural else used.id
        path, _, line = used.where.rpartition(":")
        cat.add(msgid, locations=[(path, int(line))])
    return cat


def _read(path: Path, locale: str | None = None):
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _write(path: Path, catalog) -> None:
    from babel.messages.pofile import write_po

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        write_po(fh, catalog, width=100, sort_output=True, include_previous=False)
    tmp.replace(path)


@contextmanager
def _locked(locales: Path) -> Iterator[None]:
    locales.mkdir(parents=True, exist_ok=True)
    with (locales / ".catalog.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _new_catalog(lang: Language):
    from babel.messages.catalog import Catalog

    return Catalog(locale=lang.value, domain=DOMAIN, project="cm-dashboard", charset="utf-8")


def extract(root: Path = ROOT, locales: Path = LOCALES_DIR) -> None:
    """Refresh the template and update each translated catalog from it (translations kept; ids no
    longer in code are dropped)."""
    from babel.messages.pofile import write_po

    tmpl = template(root)
    with _locked(locales), (locales / f"{DOMAIN}.pot").open("wb") as fh:
        write_po(fh, tmpl, width=100, sort_output=True, omit_header=False)
    with _locked(locales):
        for lang in Language:
            if lang is Language.EN:
                continue
            path = po_path(lang, locales)
            cat = _read(path, lang.value) if path.exists() else _new_catalog(lang)
            cat.update(tmpl, no_fuzzy_matching=True, update_header_comment=False)
            cat.obsolete.clear()
            _write(path, cat)


def add(fragments: Iterable[Path], lang: Language = Language.RU, locales: Path = LOCALES_DIR) -> int:
    """Merge translated entries of ``fragments`` into ``lang``'s catalog; returns how many."""
    count = 0
    with _locked(locales):
        path = po_path(lang, locales)
        cat = _read(path, lang.value) if path.exists() else _new_catalog(lang)
        for fragment in fragments:
            for message in _read(fragment, lang.value):
                if not message.id or not message.string:
                    continue
                existing = cat.get(message.id, context=message.context)
                if existing is not None:
                    existing.string = message.string
                    existing.flags.discard("fuzzy")
                else:
                    cat.add(message.id, message.string, context=message.context)
                count += 1
        _write(path, cat)
    reload_catalogs()
    return count


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


@dataclass(frozen=True)
class Problem:
    lang: Language
    msgid: str
    kind: str  # "missing", "empty", "fuzzy", "placeholders"
    where: str = ""

    def __str__(self) -> str:
        return f"{self.lang}: {self.kind}: {self.msgid!r} {self.where}".rstrip()


def check(root: Path = ROOT, locales: Path = LOCALES_DIR) -> list[Problem]:
    """Everything a translated catalog gets wrong against the code."""
    problems = []
    used = used_messages(root)
    for lang in Language:
        if lang is Language.EN:
            continue
        path = po_path(lang, locales)
        cat = _read(path, lang.value) if path.exists() else _new_catalog(lang)
        for u in used:
            message = cat.get(u.id)
            if message is None:
                problems.append(Problem(lang, u.id, "missing", u.where))
                continue
            strings = list(message.string) if isinstance(message.string, tuple | list) else [message.string]
            if not all(strings) or (u.plural and len(strings) < cat.num_plurals):
                problems.append(Problem(lang, u.id, "empty", u.where))
                continue
            if message.fuzzy:
                problems.append(Problem(lang, u.id, "fuzzy", u.where))
            wanted = placeholders(u.id) | (placeholders(u.plural) if u.plural else set())
            for s in strings:
                # a plural form may drop {n} ("один список"), never add or rename a placeholder
                got = placeholders(s)
                if got - wanted or (wanted - {"n"}) - got:
                    problems.append(Problem(lang, u.id, "placeholders", u.where))
                    break
    # unique per (lang, id, kind)
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for p in problems:
        key = (p.lang.value, p.msgid, p.kind)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "check"
    if command == "compile":
        for path in compile_all():
            print(f"compiled {path.relative_to(ROOT)}")
        return 0
    if command == "extract":
        extract()
        print(f"{len(used_messages())} messages extracted")
        return 0
    if command == "add":
        print(f"{add(Path(a) for a in args)} translations merged")
        return 0
    if command == "check":
        problems = check()
        for p in problems:
            print(p)
        print(f"{len(problems)} problems")
        return 1 if problems else 0
    print(__doc__)
    return 2
