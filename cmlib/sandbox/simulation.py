"""The simulation behind the demo data: one client's history, run forward in time.

Split from :mod:`cmlib.sandbox.seed` (which decides *who* and *what*: people, lists, campaign
plans) so each module has one job: this one only plays the plans out. Campaigns are sent in
date order to the addresses Active on their lists at that moment; recipients open, click,
unsubscribe (through an ``AllClientLists`` list, from every list of the client) or bounce, so
states, dates and history always agree. Every draw comes from the ``rng`` passed in, in a fixed
order, so the same seed gives the same world.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .model import (
    ACTIVE,
    BOUNCED,
    DELETED,
    UNCONFIRMED,
    UNSUBSCRIBED,
    Action,
    MailingList,
    SentCampaign,
    SubscriberRecord,
    email_key,
)


@dataclass
class Person:
    """Who a generated or scripted address belongs to and how they behave."""

    email: str
    name: str
    joins: dict[str, datetime]  # list name -> ListJoinedDate
    engagement: float = 0.8  # scales a campaign's open/click rates
    consent: str = "Yes"
    ip: str = "203.0.113.10"
    reads_with: str = "Gmail"
    fields: list[tuple[str, str]] = field(default_factory=list)
    never_confirms: tuple[str, ...] = ()  # ConfirmedOptIn lists left Unconfirmed
    bad_from: datetime | None = None  # hard-bounces the first campaign sent after this
    deletes: dict[str, datetime] = field(default_factory=dict)  # list name -> deleted at
    self_unsubs: dict[str, datetime] = field(default_factory=dict)  # list name -> unsubscribed at (no campaign)
    unsub_via: tuple[str, datetime] | None = None  # unsubscribe from the first campaign via list after date
    open_p: float | None = None  # scripted open chance (demo customers)
    click_p: float | None = None
    scripted: bool = False  # no random bounces/unsubscribes

    @property
    def key(self) -> str:
        return email_key(self.email)


@dataclass
class PlannedCampaign:
    campaign_id: str
    name: str
    subject: str
    sent: datetime
    list_names: tuple[str, ...]
    web_version_url: str
    tags: tuple[str, ...]
    open_rate: float
    click_given_open: float
    links: tuple[str, ...]


@dataclass
class ClientSim:
    """Runs one client's history forward in time and collects the results."""

    rng: random.Random
    now: datetime
    client_id: str
    lists: dict[str, MailingList]  # by name
    people: list[Person]
    from_name: str
    from_email: str
    records: dict[tuple[str, str], SubscriberRecord] = field(default_factory=dict)
    by_person: dict[str, list[SubscriberRecord]] = field(default_factory=dict)
    by_list: dict[str, list[SubscriberRecord]] = field(default_factory=dict)
    sent_via: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    actions: dict[tuple[str, str], tuple[Action, ...]] = field(default_factory=dict)
    campaigns: list[SentCampaign] = field(default_factory=list)
    opened: set[str] = field(default_factory=set)  # membership tests only, never iterated
    bounced_at: dict[str, datetime] = field(default_factory=dict)

    def build_records(self) -> None:
        for p in self.people:
            for list_name, joined in p.joins.items():
                lst = self.lists[list_name]
                if lst.confirmed_opt_in and list_name in p.never_confirms:
                    state, date = UNCONFIRMED, joined
                elif lst.confirmed_opt_in:
                    state, date = ACTIVE, joined + timedelta(minutes=self.rng.randint(2, 90))
                else:
                    state, date = ACTIVE, joined
                rec = SubscriberRecord(lst.list_id, p.email, p.name, state, min(date, self.now), joined,
                                       list(p.fields), "", p.consent)
                self.records[(lst.list_id, p.key)] = rec
                self.by_person.setdefault(p.key, []).append(rec)
                self.by_list.setdefault(lst.list_id, []).append(rec)

    def run(self, plans: list[PlannedCampaign]) -> None:
        events: list[tuple[datetime, int, str, PlannedCampaign | tuple[Person, str]]] = []
        for seq, plan in enumerate(plans):
            events.append((plan.sent, seq, "campaign", plan))
        seq = len(events)
        for p in self.people:
            for list_name, when in p.deletes.items():
                events.append((when, seq, "delete", (p, list_name)))
                seq += 1
            for list_name, when in p.self_unsubs.items():
                events.append((when, seq, "self_unsub", (p, list_name)))
                seq += 1
        events.sort(key=lambda e: (e[0], e[1]))
        people = {p.key: p for p in self.people}
        for when, _, kind, payload in events:
            if isinstance(payload, PlannedCampaign):  # kind == "campaign"
                self._send(payload, people)
            else:
                p, list_name = payload
                rec = self.records[(self.lists[list_name].list_id, p.key)]
                if rec.date > when:
                    continue
                if kind == "delete" and rec.state != DELETED:
                    rec.state, rec.date = DELETED, when
                elif kind == "self_unsub" and rec.state in (ACTIVE, UNCONFIRMED):
                    self._unsubscribe(p, [rec.list_id], when)
        for key, recs in self.by_person.items():
            if key in self.opened:
                for rec in recs:
                    rec.reads_email_with = people[key].reads_with
        for k in self.sent_via:
            self.sent_via[k].reverse()  # newest first

    def _unsubscribe(self, p: Person, list_ids: list[str], when: datetime) -> None:
        if any(self._list_by_id(lid).unsubscribes_from_all for lid in list_ids):
            list_ids = [r.list_id for r in self.by_person[p.key]]
        for lid in list_ids:
            rec = self.records[(lid, p.key)]
            if rec.state in (ACTIVE, UNCONFIRMED, BOUNCED) and rec.joined <= when:
                rec.state, rec.date = UNSUBSCRIBED, when

    def _list_by_id(self, list_id: str) -> MailingList:
        for lst in self.lists.values():
            if lst.list_id == list_id:
                return lst
        raise KeyError(list_id)

    def _send(self, plan: PlannedCampaign, people: dict[str, Person]) -> None:
        rng = self.rng
        recipients: dict[str, list[str]] = {}
        for list_name in plan.list_names:
            lid = self.lists[list_name].list_id
            for rec in self.by_list.get(lid, ()):
                if rec.state == ACTIVE and rec.date <= plan.sent:
                    recipients.setdefault(email_key(rec.email), []).append(lid)
        latest = self.now - timedelta(minutes=1)
        for key, via in recipients.items():
            p = people[key]
            for lid in via:
                self.sent_via.setdefault((lid, key), []).append(plan.campaign_id)
            acts: list[Action] = []
            bounce = (p.bad_from is not None and plan.sent >= p.bad_from) or (not p.scripted and rng.random() < 0.003)
            if bounce:
                t = min(latest, plan.sent + timedelta(minutes=rng.randint(1, 30)))
                acts.append(Action("Bounce", t, "", "Hard bounce: mailbox unavailable"))
                for rec in self.by_person[key]:
                    if rec.state in (ACTIVE, UNCONFIRMED) and rec.joined <= t:
                        rec.state, rec.date = BOUNCED, t
                p.bad_from = None
                self.actions[(plan.campaign_id, key)] = tuple(acts)
                continue
            open_p = p.open_p if p.open_p is not None else min(0.97, plan.open_rate * p.engagement)
            click_p = p.click_p if p.click_p is not None else min(0.9, plan.click_given_open * p.engagement)
            if p.consent == "No":
                open_p = click_p = 0.0  # no consent to track: opens and clicks are not recorded
            t = plan.sent
            if rng.random() < open_p:
                t = min(latest, plan.sent + timedelta(minutes=int(min(4000, rng.expovariate(1 / 180))) + 1))
                acts.append(Action("Open", t, p.ip, ""))
                for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
                    t2 = min(latest, t + timedelta(minutes=rng.randint(5, 2000)))
                    acts.append(Action("Open", t2, p.ip, ""))
                if rng.random() < click_p:
                    for _ in range(rng.randint(1, 3)):
                        t2 = min(latest, t + timedelta(minutes=rng.randint(0, 30)))
                        acts.append(Action("Click", t2, p.ip, rng.choice(plan.links)))
                self.opened.add(key)
            unsub = False
            if p.unsub_via and p.unsub_via[0] in plan.list_names and plan.sent >= p.unsub_via[1] \
                    and self.lists[p.unsub_via[0]].list_id in via:
                unsub, p.unsub_via = True, None
            elif not p.scripted and rng.random() < 0.004:
                unsub = True
            if unsub:
                if not acts and p.consent != "No":
                    t = min(latest, plan.sent + timedelta(minutes=rng.randint(10, 600)))
                    acts.append(Action("Open", t, p.ip, ""))
                    self.opened.add(key)
                last = max(a.date for a in acts) if acts else plan.sent
                t = min(latest, last + timedelta(minutes=rng.randint(1, 5)))
                acts.append(Action("Unsubscribe", t, p.ip, ""))
                self._unsubscribe(p, list(via), t)
            acts.sort(key=lambda a: (a.date, a.event, a.detail), reverse=True)
            self.actions[(plan.campaign_id, key)] = tuple(acts)
        self.campaigns.append(SentCampaign(
            campaign_id=plan.campaign_id, client_id=self.client_id, name=plan.name, subject=plan.subject,
            sent_date=plan.sent, list_ids=tuple(self.lists[n].list_id for n in plan.list_names),
            web_version_url=plan.web_version_url, from_name=self.from_name, from_email=self.from_email,
            reply_to=self.from_email.replace("news@", "support@"), total_recipients=len(recipients),
            tags=plan.tags))
