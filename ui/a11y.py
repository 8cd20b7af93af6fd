"""Keyboard and screen-reader fixes every page with the subscription dialog needs (Lookup, panel).

Streamlit 1.67 names a checkbox (and a radio option) by its label's markdown *source*
(``aria-label`` on the input), so a list name escaped for display (``ui.text.md_escape``) is
announced with its backslashes (``\\<img src\\=x …``); a tab is named by its content, which
carries the invisible word joiner ``md_escape`` puts into an address against autolinks. One
constant script (no data in it: nothing a person or the API wrote ever reaches it) fixes what
the frontend draws, now and whenever Streamlit redraws it:

* every checkbox, radio option and tab is named by the text it shows (joiners removed);
* when a dialog closes, focus goes back to the control that opened it (found again by its
  ``st-key-…`` class, since a rerun may have drawn a new element) unless focus is already
  somewhere on the page;
* an element with the :data:`ANNOUNCE_CLASS` class that appears (the plan/review step of the
  subscription dialog, :func:`announce_heading`) takes focus, so a screen reader reads it and the
  next Tab goes on from there; each ``data-step`` value is announced once.

Installed once per browser tab (a flag on ``window``) by :func:`install`.
"""
from __future__ import annotations

import html

import streamlit as st

ANNOUNCE_CLASS = "cm-announce"

_SCRIPT = """<script>(function () {
  if (window.__cmA11y) return;
  window.__cmA11y = true;
  var JOINER = /\\u2060/g, opener = null, dialogOpen = false, announced = {};
  function shown(el) { return el ? el.textContent.replace(JOINER, '').trim() : ''; }
  function name(input, text) {
    if (input && text && input.getAttribute('aria-label') !== text) input.setAttribute('aria-label', text);
  }
  function names() {
    document.querySelectorAll('[data-testid="stCheckbox"]').forEach(function (box) {
      name(box.querySelector('input'),
           shown(box.querySelector('[data-testid="stWidgetLabel"] [data-testid="stMarkdownContainer"]')));
    });
    document.querySelectorAll('[data-testid="stRadio"] [role="radiogroup"] label').forEach(function (option) {
      name(option.querySelector('input[type="radio"]'),
           shown(option.querySelector('[data-testid="stMarkdownContainer"]')));
    });
    document.querySelectorAll('[role="tab"]').forEach(function (tab) {
      name(tab, shown(tab.querySelector('[data-testid="stMarkdownContainer"]')));
    });
  }
  function keyOf(el) {
    var box = el && el.closest ? el.closest('[class*="st-key-"]') : null;
    if (!box) return null;
    var m = box.className.match(/(?:^|\\s)(st-key-\\S+)/);
    return m ? m[1] : null;
  }
  document.addEventListener('focusin', function (ev) {
    if (!ev.target.closest('[role="dialog"]')) opener = keyOf(ev.target) || opener;
  }, true);
  function focusBack() {
    var current = document.activeElement;
    if (current && current !== document.body && document.contains(current)) return;
    if (!opener) return;
    var box = document.getElementsByClassName(opener)[0];
    var target = box && box.querySelector('button, a[href], input, [tabindex]');
    if (target) target.focus();
  }
  function dialogs() {
    var now = !!document.querySelector('[role="dialog"]');
    if (dialogOpen && !now) { focusBack(); setTimeout(focusBack, 0); }
    dialogOpen = now;
  }
  function announce() {
    document.querySelectorAll('.""" + ANNOUNCE_CLASS + """[data-step]').forEach(function (el) {
      var step = el.getAttribute('data-step');
      if (announced[step]) return;
      announced[step] = true;
      el.focus();
    });
  }
  function all() { names(); dialogs(); announce(); }
  new MutationObserver(all).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['aria-label']});
  all();
})();</script>"""


def install() -> None:
    """Draw the script (invisible) on this page; it runs once per browser tab."""
    st.html(_SCRIPT, unsafe_allow_javascript=True)


def announce_heading(text: str, step: str, level: int = 4) -> None:
    """A heading the script focuses when it first appears with this ``step`` (e.g. a plan's token):
    the way a dialog says "this is the next step" to a keyboard or screen-reader user."""
    st.html(f'<h{level} class="{ANNOUNCE_CLASS}" tabindex="-1" data-step="{html.escape(step, quote=True)}" '
            f'style="margin:0;padding:0.25rem 0;font-size:1rem;outline-offset:2px">{html.escape(text)}</h{level}>')
