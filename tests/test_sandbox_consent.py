"""What the sandbox stores as consent to track when a write says "Unchanged" (issue 12, item 4).

"Unchanged" is an instruction -- keep what is stored -- never a value. Campaign Monitor's
documentation does not say what a brand-new subscriber gets; the sandbox takes the privacy-safe
reading: the consent the client already holds for the address on another list, else "No"
(nobody said yes). A read-back therefore never reports "Unchanged" for an address we added.
"""
from __future__ import annotations


def _list_id(sandbox, name: str) -> str:
    return sandbox.data.list_by_name(sandbox.main_client_id, name).list_id


def test_a_new_subscriber_added_with_unchanged_reads_back_no(cm, sandbox):
    news = _list_id(sandbox, "Newsletter")
    cm.add_subscriber(news, "brand.new@example.com", consent_to_track="Unchanged")
    back = cm.subscriber(news, "brand.new@example.com")
    assert back.state == "Active" and back.consent_to_track == "No"


def test_unchanged_on_a_new_list_keeps_what_the_client_holds_for_the_address(cm, sandbox):
    news, webinars = _list_id(sandbox, "Newsletter"), _list_id(sandbox, "Webinars")
    cm.add_subscriber(news, "yes.person@example.com", consent_to_track="Yes")
    cm.add_subscriber(webinars, "yes.person@example.com", consent_to_track="Unchanged")
    assert cm.subscriber(webinars, "yes.person@example.com").consent_to_track == "Yes"


def test_unchanged_on_an_existing_subscriber_keeps_the_stored_value_and_yes_no_replace_it(cm, sandbox):
    news = _list_id(sandbox, "Newsletter")
    cm.add_subscriber(news, "later@example.com", consent_to_track="Yes")
    cm.add_subscriber(news, "later@example.com", consent_to_track="Unchanged")
    assert cm.subscriber(news, "later@example.com").consent_to_track == "Yes"
    cm.add_subscriber(news, "later@example.com", consent_to_track="No")
    assert cm.subscriber(news, "later@example.com").consent_to_track == "No"


def test_a_resubscribed_suppressed_address_gets_a_real_value(cm, sandbox):
    webinars = _list_id(sandbox, "Webinars")
    email = "suppressed@example.com"
    cm.add_subscriber(webinars, email, resubscribe=True, consent_to_track="Unchanged")
    assert cm.subscriber(webinars, email).consent_to_track == "No"
    assert sandbox.data.record(webinars, email).consent_to_track == "No"
