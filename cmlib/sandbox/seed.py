"""Deterministic demo data: one account, two clients, lists, people, a year of campaigns.

Everything comes from ``random.Random(seed)`` and dates are offsets from a ``now`` passed in,
so one (seed, now) always yields the same world (tests pin ``now``; the app uses the real time
truncated to the minute). Nothing iterates a ``set`` of strings, whose order changes per process.

The world is *simulated*, not sprinkled: campaigns are sent in date order to the addresses
Active on their lists at that moment; a recipient may open, click, unsubscribe (which, through
an ``AllClientLists`` list, unsubscribes them from every list of the client) or bounce (Bounced
on every list it is Active on). So states, ``Date`` and history always agree, and an
Unsubscribe or Bounce action sits in the history of the campaign that caused it.

The demo customers of :mod:`cmlib.sandbox.demo` are scripted into the same simulation. This
module decides who and what (lists, people, campaign plans); :mod:`cmlib.sandbox.simulation`
plays the plans out.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from . import demo
from .model import (
    ALL_CLIENT_LISTS,
    BOUNCED,
    ONLY_THIS_LIST,
    Action,
    ClientInfo,
    MailingList,
    SuppressionEntry,
    World,
    email_key,
)
from .simulation import ClientSim, Person, PlannedCampaign

MAIN_PEOPLE = 1200  # about 2,000 (list, address) records on the main client
OTHER_PEOPLE = 150
MAIN_CAMPAIGNS = 40
NEWEST_CAMPAIGN_DAYS_AGO = 9  # leaves room for fresh@ (joined a day ago) to have no history
CLIENT_FIELDS = ("City", "Interests", "Loyalty points", "Customer since")


@dataclass(frozen=True)
class ListSpec:
    name: str
    confirmed_opt_in: bool
    unsubscribe_setting: str
    share: float  # chance a generated person is on this list


MAIN_LISTS = (
    ListSpec("Newsletter", False, ONLY_THIS_LIST, 0.60),
    ListSpec("Product updates", True, ONLY_THIS_LIST, 0.30),
    ListSpec("Webinars", False, ONLY_THIS_LIST, 0.25),
    ListSpec("Offers", False, ALL_CLIENT_LISTS, 0.30),
    ListSpec("Events Moscow", True, ONLY_THIS_LIST, 0.12),
    ListSpec("Partners", False, ALL_CLIENT_LISTS, 0.06),
    ListSpec("Beta testers", True, ONLY_THIS_LIST, 0.05),
    ListSpec(demo.VIP_LIST_NAME, False, ONLY_THIS_LIST, 0.03),
)
OTHER_LISTS = (
    ListSpec("Globex customers", False, ONLY_THIS_LIST, 0.75),
    ListSpec("Globex announcements", True, ALL_CLIENT_LISTS, 0.40),
)
# Which lists each main-client campaign goes to, cycled oldest to newest (10 x 4 = 40).
CAMPAIGN_CYCLE: tuple[tuple[str, ...], ...] = (
    ("Newsletter",), ("Offers",), ("Product updates",), ("Newsletter", "Offers"), ("Webinars",),
    ("Newsletter",), ("Events Moscow",), ("Offers",), ("Partners", "Beta testers"), (demo.VIP_LIST_NAME,),
)

FIRST_NAMES = (
    "Alex", "Anton", "Boris", "Daria", "Dmitry", "Elena", "Emma", "Fedor", "Galina", "George",
    "Hannah", "Igor", "Irina", "James", "Julia", "Kirill", "Ksenia", "Laura", "Leo", "Lidia",
    "Marat", "Marina", "Mark", "Mikhail", "Natalia", "Nikita", "Oleg", "Olivia", "Pavel", "Polina",
    "Roman", "Ruslan", "Sara", "Sergey", "Sofia", "Stepan", "Tatiana", "Timur", "Vera", "Victor",
    "Yana", "Yuri", "Zoe", "Arina", "Denis", "Egor", "Alina", "Maxim", "Nina", "Peter",
)
LAST_NAMES = (
    "Ivanov", "Petrova", "Smirnov", "Kuznetsova", "Popov", "Volkova", "Sokolov", "Lebedeva",
    "Kozlov", "Novikova", "Morozov", "Pavlova", "Orlov", "Fedorova", "Smith", "Jones", "Brown",
    "Taylor", "Wilson", "Evans", "Thomas", "Roberts", "Walker", "Wright", "Green", "Hall",
    "Wood", "Clarke", "Baker", "Hughes", "Müller", "Schmidt", "Garcia", "Rossi", "Dubois",
    "Nowak", "Kowalski", "Horvat", "Nielsen", "Berg",
)
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "corp.example.org")
CITIES = ("Moscow", "Saint Petersburg", "Kazan", "Novosibirsk", "Berlin", "London", "Almaty")
INTERESTS = ("Fiction", "Business", "Science", "Kids", "Audiobooks", "History")
MAIL_CLIENTS = ("Gmail", "Apple Mail", "Outlook", "iPhone", "Yahoo! Mail", "Thunderbird", "Android")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
CATEGORIES = ("audiobooks", "children's books", "business titles", "e-books", "gift cards", "bestsellers")
TOPICS = ("Reading habits that stick", "Building a home library", "Audiobooks for commuters",
          "How we pick our bestsellers", "Writing your first novel", "Speed reading myths")


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _at(now: datetime, rng: random.Random, days_ago: float) -> datetime:
    """A minute-precision moment ``days_ago`` before now."""
    return (now - timedelta(days=days_ago)).replace(second=0, microsecond=0) - timedelta(minutes=rng.randint(0, 59))


# ---------------------------------------------------------------------------- people
def _generated_people(rng: random.Random, now: datetime, specs: tuple[ListSpec, ...], count: int,
                      taken: set[str]) -> list[Person]:
    people = []
    for _ in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{first}.{last}".lower().replace("ü", "ue")
        if rng.random() < 0.03:
            local += "+" + rng.choice(("news", "shop", "cm"))
        while True:
            email = f"{local}{rng.randint(1, 9999)}@{rng.choice(DOMAINS)}"
            if email not in taken:
                break
        taken.add(email)
        if rng.random() < 0.03:  # people type capitals; CM keeps them as given
            email = email[0].upper() + email[1:]
        names = [s.name for s in specs if rng.random() < s.share] or [specs[0].name]
        joins = {n: _at(now, rng, rng.uniform(0.5, 730)) for n in names}
        p = Person(
            email=email,
            name="" if rng.random() < 0.08 else f"{first} {last}",
            joins=joins,
            engagement=rng.betavariate(2, 2.5) * 1.8,
            consent=rng.choices(("Yes", "No", "Unchanged"), (85, 8, 7))[0],
            ip=f"{rng.choice(('203.0.113', '198.51.100', '192.0.2'))}.{rng.randint(1, 254)}",
            reads_with=rng.choice(MAIL_CLIENTS),
        )
        if rng.random() < 0.4:
            p.fields = _random_fields(rng, min(joins.values()))
        coi = {s.name for s in specs if s.confirmed_opt_in}
        p.never_confirms = tuple(n for n in names if n in coi and rng.random() < 0.10)
        if rng.random() < 0.02:
            p.bad_from = min(joins.values())
        for n, joined in joins.items():
            span = (now - joined).total_seconds()
            if rng.random() < 0.05:
                p.deletes[n] = joined + timedelta(seconds=int(rng.uniform(0.1, 0.95) * span))
            elif rng.random() < 0.02:
                p.self_unsubs[n] = joined + timedelta(seconds=int(rng.uniform(0.1, 0.95) * span))
        people.append(p)
    return people


def _random_fields(rng: random.Random, joined: datetime) -> list[tuple[str, str]]:
    out = [("City", rng.choice(CITIES))]
    # A multi-select field: the Key repeats, once per value.
    out += [("Interests", interest) for interest in rng.sample(INTERESTS, rng.randint(1, 2))]
    if rng.random() < 0.5:
        out.append(("Loyalty points", str(rng.randint(0, 5000))))
    out.append(("Customer since", joined.strftime("%Y-%m-%d")))
    return out


def _demo_people_main(now: datetime) -> list[Person]:
    """The documented demo customers of the main client (see demo.DEMO_CUSTOMERS)."""
    d = lambda days: (now - timedelta(days=days)).replace(second=0, microsecond=0)  # noqa: E731
    return [
        Person("fresh@example.com", "Fresh Start", {"Newsletter": d(1), "Product updates": d(1)},
               never_confirms=("Product updates",), scripted=True),
        Person("anna@example.com", "Anna Petrova",
               {"Newsletter": d(420), "Offers": d(400), "Webinars": d(380)},
               open_p=0.85, click_p=0.45, reads_with="Gmail", ip="203.0.113.7", scripted=True,
               fields=[("City", "Moscow"), ("Interests", "Fiction"), ("Interests", "Audiobooks"),
                       ("Loyalty points", "1200"), ("Customer since", d(420).strftime("%Y-%m-%d"))]),
        Person("ivan@example.com", "Ivan Sokolov",
               {"Newsletter": d(330), "Product updates": d(320), "Webinars": d(300), "Events Moscow": d(280)},
               open_p=0.55, click_p=0.25, reads_with="Apple Mail", ip="198.51.100.21", scripted=True,
               fields=[("City", "Moscow")]),
        Person("ivan.work@example.org", "Ivan Sokolov (work)",
               {"Newsletter": d(250), "Product updates": d(250), "Webinars": d(245), "Events Moscow": d(240)},
               open_p=0.4, click_p=0.15, reads_with="Outlook", ip="198.51.100.22", scripted=True,
               unsub_via=("Newsletter", d(150)), self_unsubs={"Events Moscow": d(60)}),
        Person("ivan.old@example.com", "Ivan Sokolov",
               {"Newsletter": d(700), "Product updates": d(690), "Webinars": d(650), "Events Moscow": d(600)},
               open_p=0.3, click_p=0.1, reads_with="Thunderbird", ip="198.51.100.23", scripted=True,
               deletes={"Product updates": d(500)}, bad_from=d(200)),
        Person("maria+news@example.com", "Maria Orlova", {"Newsletter": d(200), "Offers": d(190)},
               open_p=0.6, click_p=0.3, reads_with="iPhone", ip="203.0.113.45", scripted=True),
        Person("leaver@example.com", "Lev Leaver",
               {"Newsletter": d(300), "Offers": d(300), "Webinars": d(280)},
               open_p=0.5, click_p=0.1, reads_with="Gmail", ip="192.0.2.77", scripted=True,
               unsub_via=("Offers", d(120))),
        Person("vip@example.com", "Victoria Important", {demo.VIP_LIST_NAME: d(330), "Newsletter": d(330)},
               open_p=0.7, click_p=0.3, reads_with="Apple Mail", ip="203.0.113.99", scripted=True,
               fields=[("City", "London"), ("Loyalty points", "9800")]),
        Person("Olga.Case@Example.COM", "Olga Case", {"Newsletter": d(150), "Webinars": d(140)},
               open_p=0.4, click_p=0.1, reads_with="Android", ip="192.0.2.12", scripted=True),
    ]


def _demo_people_other(now: datetime) -> list[Person]:
    d = lambda days: (now - timedelta(days=days)).replace(second=0, microsecond=0)  # noqa: E731
    return [Person("globex.fan@example.org", "Gloria Fan",
                   {"Globex customers": d(200), "Globex announcements": d(180)},
                   open_p=0.5, click_p=0.2, scripted=True)]


# ---------------------------------------------------------------------------- campaigns
def _plan_main_campaigns(rng: random.Random, now: datetime) -> list[PlannedCampaign]:
    plans = []
    counters: dict[str, int] = {}
    tags: tuple[str, ...]
    for i in range(MAIN_CAMPAIGNS):
        lists = CAMPAIGN_CYCLE[i % len(CAMPAIGN_CYCLE)]
        days = NEWEST_CAMPAIGN_DAYS_AGO + (MAIN_CAMPAIGNS - 1 - i) * 9 + rng.uniform(0, 2)
        sent = (now - timedelta(days=days)).replace(hour=rng.randint(8, 11), minute=rng.randint(0, 59),
                                                    second=0, microsecond=0)
        n = counters[lists[0]] = counters.get(lists[0], 0) + 1
        month = f"{MONTHS[sent.month - 1]} {sent.year}"
        pct = rng.choice((10, 15, 20, 25, 30))
        if lists == ("Newsletter", "Offers"):
            name, subject = f"Newsletter + offers — {month}", f"This month's picks and {pct}% off"
            tags = ("newsletter", "promo")
        elif lists[0] == "Newsletter":
            name = f"Newsletter — {month}"
            subject = rng.choice((f"Our picks for {MONTHS[sent.month - 1]}",
                                  f"{rng.randint(5, 12)} new books this month", "What we are reading now"))
            tags = ("newsletter",)
        elif lists[0] == "Offers":
            cat = rng.choice(CATEGORIES)
            name, subject, tags = f"Offer: {pct}% off {cat} ({month})", f"{pct}% off {cat}, this week only", ("promo",)
        elif lists[0] == "Product updates":
            name, subject, tags = f"Product update {sent.year}.{n}", "What's new in the Acme Books app", ()
        elif lists[0] == "Webinars":
            topic = rng.choice(TOPICS)
            name, subject, tags = f"Webinar: {topic}", f"Join us live: {topic}", ("webinar",)
        elif lists[0] == "Events Moscow":
            name = f"Moscow meetup — {sent.day} {MONTHS[sent.month - 1]}"
            subject, tags = "See you at the Moscow book meetup", ("events", "moscow")
        elif lists[0] == "Partners":
            name, subject, tags = f"Partner & beta bulletin #{n}", "News for partners and beta testers", ()
        else:  # the VIP list: a subject with HTML and markdown in it, on purpose
            name = f"VIP preview #{n}"
            subject = "VIP preview: <b>early access</b> **today** :red[now] & <script>x</script>"
            tags = ("vip",)
        slug = name.lower().split(" ")[0].strip(":")
        links = tuple(f"https://example.com/{slug}/{rng.randint(1000, 99999)}/" for _ in range(rng.randint(2, 5)))
        plans.append(PlannedCampaign(
            campaign_id=_hex_id(rng), name=name, subject=subject, sent=sent, list_names=lists,
            web_version_url=f"https://example.createsend.com/t/r-{rng.getrandbits(64):016X}",
            tags=tags, open_rate=rng.uniform(0.22, 0.48), click_given_open=rng.uniform(0.08, 0.25),
            links=links))
    return plans


def _plan_other_campaigns(rng: random.Random, now: datetime) -> list[PlannedCampaign]:
    plans = []
    for i in range(5):
        lists = ("Globex customers",) if i % 2 == 0 else ("Globex customers", "Globex announcements")
        sent = (now - timedelta(days=300 - i * 60 + rng.uniform(0, 3))).replace(hour=10, minute=rng.randint(0, 59),
                                                                               second=0, microsecond=0)
        plans.append(PlannedCampaign(
            campaign_id=_hex_id(rng), name=f"Globex event digest #{i + 1}", subject="Upcoming Globex events",
            sent=sent, list_names=lists, web_version_url=f"https://example.createsend.com/t/r-{rng.getrandbits(64):016X}",
            tags=("digest",), open_rate=rng.uniform(0.2, 0.4), click_given_open=rng.uniform(0.05, 0.2),
            links=(f"https://example.org/events/{i + 1}/",)))
    return plans


def _make_lists(rng: random.Random, client_id: str, specs: tuple[ListSpec, ...]) -> dict[str, MailingList]:
    return {
        s.name: MailingList(
            list_id=_hex_id(rng), client_id=client_id, name=s.name, confirmed_opt_in=s.confirmed_opt_in,
            unsubscribe_setting=s.unsubscribe_setting,
            unsubscribe_page="" if rng.random() < 0.5 else "https://example.com/unsubscribed",
            confirmation_success_page="https://example.com/confirmed" if s.confirmed_opt_in else "")
        for s in specs
    }


def resolve_now(now: datetime | None = None) -> datetime:
    """The data's fixed "now": as given, or the current time, truncated to the minute."""
    return (now or datetime.now()).replace(second=0, microsecond=0)


def build_world(seed: int = 7, now: datetime | None = None) -> World:
    """The seeded account for (seed, now). Cached per (seed, minute): a World is immutable and
    every Store copies only what writes change, so many sandboxes cost one generation."""
    return _build_world(seed, resolve_now(now))


@lru_cache(maxsize=8)
def _build_world(seed: int, now: datetime) -> World:
    rng = random.Random(seed)
    main_id, other_id = demo.MAIN_CLIENT_ID, demo.OTHER_CLIENT_ID
    clients = (
        ClientInfo(main_id, demo.MAIN_CLIENT_NAME, "Support Desk", "support@example.com", "Russian Federation",
                   "(GMT+03:00) Moscow, St. Petersburg", "acmebooks"),
        ClientInfo(other_id, demo.OTHER_CLIENT_NAME, "Events Team", "events@example.org", "Germany",
                   "(GMT+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", "globexevents"),
    )
    main_lists = _make_lists(rng, main_id, MAIN_LISTS)
    other_lists = _make_lists(rng, other_id, OTHER_LISTS)

    taken = {email_key(a) for a in demo.all_demo_addresses()}
    main_people = _demo_people_main(now) + _generated_people(rng, now, MAIN_LISTS, MAIN_PEOPLE, taken)
    other_people = _demo_people_other(now) + _generated_people(rng, now, OTHER_LISTS, OTHER_PEOPLE, taken)

    sims = []
    for cid, lists, people, plans, (from_name, from_email) in (
        (main_id, main_lists, main_people, _plan_main_campaigns(rng, now), (demo.MAIN_CLIENT_NAME, "news@example.com")),
        (other_id, other_lists, other_people, _plan_other_campaigns(rng, now),
         (demo.OTHER_CLIENT_NAME, "news@example.org")),
    ):
        sim = ClientSim(rng, now, cid, lists, people, from_name, from_email)
        sim.build_records()
        sim.run(plans)
        sims.append(sim)

    main_sim = sims[0]
    bounced = [p for p in main_people if not p.scripted
               and all(r.state == BOUNCED for r in main_sim.by_person[p.key])]
    suppression_main = [SuppressionEntry("suppressed@example.com", "Unsubscribed", _at(now, rng, 100))]
    suppression_main += [SuppressionEntry(p.email, "Bounced", main_sim.by_person[p.key][0].date) for p in bounced[:2]]
    suppression_main += [
        SuppressionEntry("complaints@example.net", "Spam Complaint", _at(now, rng, 45)),
        SuppressionEntry("no.more.mail@example.org", "Manually Suppressed", _at(now, rng, 210)),
    ]
    suppression = {
        main_id: tuple(sorted(suppression_main, key=lambda e: e.email.lower())),
        other_id: (SuppressionEntry("unsubscribed.globex@example.org", "Unsubscribed", _at(now, rng, 30)),),
    }

    sent_via: dict[tuple[str, str], tuple[str, ...]] = {}
    actions: dict[tuple[str, str], tuple[Action, ...]] = {}
    for sim in sims:
        sent_via.update({k: tuple(v) for k, v in sim.sent_via.items()})
        actions.update(sim.actions)
    return World(
        seed=seed,
        now=now,
        account_api_key=demo.ACCOUNT_API_KEY,
        client_api_keys={demo.CLIENT_API_KEY: main_id},
        clients=clients,
        lists=tuple(main_lists.values()) + tuple(other_lists.values()),
        records=tuple(r for sim in sims for r in sim.records.values()),
        campaigns=tuple(c for sim in sims for c in sim.campaigns),
        sent_via=sent_via,
        actions=actions,
        suppression=suppression,
        custom_field_names={main_id: CLIENT_FIELDS, other_id: ()},
    )


def fingerprint(world: World) -> str:
    """A short digest of everything a client can read, to compare worlds across processes."""
    h = hashlib.sha256()
    for lst in world.lists:
        h.update(repr(lst).encode())
    for rec in world.records:
        h.update(repr(rec).encode())
    for camp in world.campaigns:
        h.update(repr(camp).encode())
    for key in sorted(world.sent_via):
        h.update(repr((key, world.sent_via[key])).encode())
    for key in sorted(world.actions):
        h.update(repr((key, world.actions[key])).encode())
    for cid in sorted(world.suppression):
        h.update(repr(world.suppression[cid]).encode())
    return h.hexdigest()[:16]
