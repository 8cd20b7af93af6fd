"""What AppTest-based tests share: reading markdown as a person sees it, opening a page as a browser does."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from streamlit.testing.v1 import AppTest

from ui.text import WORD_JOINER


def shown(md: str) -> str:
    """What a markdown string displays: backslash escapes resolved, invisible word joiners dropped."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md).replace(WORD_JOINER, "")


def caption_lines(block) -> list[str]:
    """Every line the captions under ``block`` show (a caption's lines are split by markdown hard
    line breaks), as a person reads them."""
    return [line for c in block.caption for line in shown(c.value).split("  \n")]


def open_page(path: str, browser_zone: str | None = None, **session: Any) -> AppTest:
    """One run of a page as a browser opens it: Streamlit knows the browser's time zone (None: it
    does not), with ``session`` preset in the session state."""
    at = AppTest.from_file(path, default_timeout=30)
    if browser_zone is not None:
        at.context["timezone"] = browser_zone
    for k, v in session.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


_TEXT_ATTRS = ("label", "value", "body", "help", "placeholder", "caption")


def shown_columns(node) -> list[str]:
    """The columns a dataframe element draws: its column_order when set, minus hidden ones."""
    frame = node.value
    order = list(node.proto.column_order) or [str(c) for c in frame.columns]
    try:
        config = json.loads(node.proto.columns or "{}")
    except ValueError:
        config = {}
    return [c for c in order if c in frame.columns and not config.get(c, {}).get("hidden")]


def _dataframe_texts(node, where: str) -> Iterator[tuple[str, str]]:
    frame = node.value
    for column in shown_columns(node):
        yield f"{where} column", column
        for value in frame[column].tolist():
            yield f"{where} [{column}]", str(value)


class _HtmlText(HTMLParser):
    """What an ``st.html`` body shows or says: its text outside ``<style>``/``<script>``, and the
    ``aria-label``/``title``/``alt`` a screen reader or a tooltip gives."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._hidden += 1
        self.texts.extend(v for k, v in attrs if k in ("aria-label", "title", "alt") and v)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.texts.append(data.strip())


def html_texts(body: str) -> list[str]:
    parser = _HtmlText()
    parser.feed(body)
    return parser.texts


_MARKS = {"yes": True, "no": False, "да": True, "нет": False}  # a ✓/✗'s text alternative


class _CampaignTable(HTMLParser):
    """The Lookup page's campaigns table (ui.campaigns_html) read back as a grid: header texts,
    and per row the cells' text, a mark's text alternative ("yes"/"no"), a link's href."""

    def __init__(self) -> None:
        super().__init__()
        self.header: list[str] = []
        self.rows: list[list[object]] = []
        self._cell: list[object] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell = []
        elif self._cell is not None and tag == "span" and a.get("role") == "img":
            self._cell.append(("mark", a.get("aria-label")))
        elif self._cell is not None and tag == "a":
            self._cell.append(("link", a.get("href")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag in ("th", "td") and self._cell is not None:
            marks = [v for k, v in (c for c in self._cell if isinstance(c, tuple)) if k == "mark"]
            links = [v for k, v in (c for c in self._cell if isinstance(c, tuple)) if k == "link"]
            text = "".join(c for c in self._cell if isinstance(c, str)).strip()
            value: object = _MARKS.get(marks[0], marks[0]) if marks else (links[0] if links else (text or None))
            if self._in_head:
                self.header.append(text)
            else:
                self.rows[-1].append(value)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def campaign_tables(node) -> list[tuple[list[str], list[dict]]]:
    """Every campaigns table under ``node`` (an AppTest, a tab): its column headers and its rows
    as ``{header: value}``, a ✓/✗ as True/False ("yes"/"no" in the page's language), a link as
    its href, an empty cell as None -- the shape ``presenters.campaign_rows`` gives."""
    out = []
    for h in node.get("html"):
        if '<table class="cm-campaigns-table"' not in h.proto.body:
            continue
        table = _CampaignTable()
        table.feed(h.proto.body)
        rows = [dict(zip(table.header, row, strict=True)) for row in table.rows]
        out.append((table.header, rows))
    return out


def campaign_table(node) -> tuple[list[str], list[dict]]:
    """The one campaigns table under ``node``."""
    [table] = campaign_tables(node)
    return table


@dataclass(frozen=True)
class ShownFigure:
    """One activity figure as the page shows it."""
    label: str
    value: str
    help: str


class _Figures(HTMLParser):
    """The ``<dt>``/``<dd>`` texts of a figures list, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[list[str]] = []
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("dt", "dd"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("dt", "dd") and self._text is not None:
            self.cells.append(["".join(self._text)])
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def shown_figures(node) -> list[ShownFigure]:
    """The activity figures under ``node`` (an AppTest, a tab), in order: label, value and the
    sentence under the value."""
    out: list[ShownFigure] = []
    for h in node.get("html"):
        if '<dl class="cm-figures"' not in h.proto.body:
            continue
        parser = _Figures()
        parser.feed(h.proto.body)
        texts = [c[0] for c in parser.cells]
        out.extend(ShownFigure(*texts[i:i + 3]) for i in range(0, len(texts), 3))
    return out


def visible_texts(at: AppTest) -> list[tuple[str, str]]:
    """(where, text) for every string an element of the page shows a person."""
    out: list[tuple[str, str]] = []

    def walk(node, where: str) -> None:
        kind = getattr(node, "type", type(node).__name__)
        if kind == "dataframe":
            out.extend(_dataframe_texts(node, where))
        elif kind == "html":
            out.extend((f"{where} html", text) for text in html_texts(node.proto.body))
        elif kind in ("vega_lite_chart", "arrow_vega_lite_chart"):
            out.append((f"{where} chart", node.proto.spec))
        else:
            for attr in _TEXT_ATTRS:
                try:
                    value = getattr(node, attr)
                except Exception:  # an attribute this element type does not have
                    continue
                if isinstance(value, str):
                    out.append((f"{where} {kind}.{attr}", shown(value)))
            options = getattr(node, "options", None)
            if isinstance(options, (list, tuple)):
                out.extend((f"{where} {kind}.options", shown(str(o))) for o in options)
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for key, child in children.items():
                walk(child, f"{where}/{key}")

    walk(at._tree, "")
    return out
