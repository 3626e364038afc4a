"""CNN/DailyMail-shaped examples: a short article around one company event, background sentences that name other
entities, and two highlight lines."""

from __future__ import annotations

import random

from peftsum.data.synthetic.vocab import CITIES, DAYS, ITEMS, NAMES, Choices, n_distractors

COMPANIES = (
    "Acme Borealis Cobalt Dynamo Everest Fulcrum Granite Helix Ionic Juniper Keystone Lumen Meridian "
    "Nimbus Orion Pinnacle Quarry Redwood Summit Titan"
).split()


def news_example(rng: random.Random) -> dict:
    e = Choices(rng)
    company, city, day = e.pick(COMPANIES), e.pick(CITIES), e.pick(DAYS)
    ceo, jobs = e.pick(NAMES), e.rng.randrange(50, 5000, 50)
    kind = e.rng.choice(("factory", "layoffs", "merger", "recall"))
    if kind == "factory":
        core = [
            f"{company} said on {day} that it will open a new factory in {city}.",
            f"The plant is expected to create {jobs} jobs, chief executive {ceo} told reporters.",
            f"Local officials in {city} welcomed the decision.",
        ]
        highlights = [
            e.one([f"{company} will open a factory in {city} .", f"New {company} plant for {city} ."]),
            e.one([f"The plant should create {jobs} jobs .", f"{jobs} jobs expected , says {ceo} ."]),
        ]
    elif kind == "layoffs":
        core = [
            f"{company} announced on {day} that it will cut {jobs} jobs.",
            f"Most of the cuts will fall in {city}, where the company has its headquarters.",
            f"Chief executive {ceo} blamed weak demand.",
        ]
        highlights = [
            e.one([f"{company} to cut {jobs} jobs .", f"{jobs} jobs to go at {company} ."]),
            e.one([f"Cuts hit {city} hardest .", f"{ceo} blames weak demand ."]),
        ]
    elif kind == "merger":
        other = e.pick(COMPANIES)
        core = [
            f"{company} agreed on {day} to buy its rival {other}.",
            f"The combined company will be based in {city} and led by {ceo}.",
            f"Analysts said the deal could affect {jobs} jobs.",
        ]
        highlights = [
            e.one([f"{company} to buy rival {other} .", f"{company} and {other} agree to merge ."]),
            e.one([f"New company based in {city} , led by {ceo} .", f"{ceo} to lead merged firm ."]),
        ]
    else:
        item = e.pick(ITEMS)
        core = [
            f"{company} is recalling {jobs} units of its {item} after reports of faults.",
            f"The recall was announced on {day} in {city}.",
            f"Chief executive {ceo} apologised to customers.",
        ]
        highlights = [
            e.one([f"{company} recalls {jobs} units of its {item} .", f"{item} recall at {company} ."]),
            e.one([f"{ceo} apologises to customers .", f"Recall announced in {city} ."]),
        ]
    background = [
        f"Shares in {e.other(COMPANIES)} rose slightly in {e.other(CITIES)}.",
        f"Last year the firm reported record sales of its {e.other(ITEMS)}.",
        f"{e.other(NAMES)}, an analyst, said the market remained uncertain.",
        f"A spokesperson for {e.other(COMPANIES)} declined to comment.",
        f"Earlier on {e.other(DAYS)}, traffic was disrupted in {e.other(CITIES)}.",
        "The company was founded more than fifty years ago.",
        "Trading was quiet across the region.",
    ]
    body = list(core)
    for _ in range(n_distractors(rng, 1.2)):
        body.insert(rng.randint(1, len(body)), rng.choice(background))
    return {"article": " ".join(body), "highlights": "\n".join(highlights), "scenario": kind}
