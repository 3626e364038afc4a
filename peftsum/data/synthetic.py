"""Deterministic, learnable synthetic summarisation data in the shapes of DialogSum and CNN/DailyMail.

Why: no hub datasets can be fetched here, and the quickstart and tests need data a tiny model measurably learns
in minutes on a CPU — but not so easily that every method scores perfectly. Each example is a scenario with
several slots (people, places, days, times, items, amounts). The text varies its phrasing, adds distractor turns
or sentences that mention *other* entities of the same types, and sprinkles filler words. The summary is
abstractive: it restates the scenario's outcome in one of several phrasings, so it is never a copy of a line and
even a perfect model cannot reach ROUGE 1.0. A model must (a) recognise the scenario, (b) copy the right entities
and (c) ignore the distractors.

``generate(name, split, n, seed)`` is pure: the same arguments always give the same examples.
"""

from __future__ import annotations

import random
from collections.abc import Callable

NAMES = (
    "Anna Ben Carla David Emma Frank Grace Henry Irene Jack Karen Leo Maria Nick Olga Peter Rosa Sam Tina "
    "Victor Wendy Yusuf Zoe Amir Bella Chen Diana Ethan Fatima Gustav Hana Igor Julia Kofi Lena Marco Nadia "
    "Oscar Priya Raj Sofia Tom Uma Vera Will Xenia"
).split()
PLACES = (
    "library cafe office park station museum gym bakery cinema hospital school market hotel airport bank "
    "restaurant garden harbor theater bookstore"
).split()
CITIES = (
    "Paris Berlin Madrid Rome Vienna Prague Lisbon Oslo Dublin Athens Warsaw Tokyo Seoul Lima Cairo Boston "
    "Denver Austin Toronto Sydney"
).split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
TIMES = ("9 am", "10 am", "11 am", "noon", "2 pm", "3 pm", "4 pm", "5 pm", "6 pm", "7 pm", "8 pm")
ITEMS = (
    "laptop umbrella jacket camera phone wallet bicycle guitar lamp printer watch backpack sofa kettle "
    "tablet scarf helmet mirror blender radio"
).split()
TOPICS = ("budget report project schedule contract design marketing plan hiring survey launch").split()
FOODS = "pasta salad soup pizza curry steak sushi noodles burger omelette".split()
DRINKS = "tea coffee juice water lemonade cola".split()
JOBS = "engineer designer nurse teacher accountant manager chef driver editor analyst".split()
FILLERS = ("well,", "um,", "you know,", "actually,", "so,", "oh,", "honestly,", "hmm,")


class _Ex:
    """Random choices for one example, with helpers that keep distractor entities distinct from the real ones."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def pick(self, pool: tuple[str, ...] | list[str]) -> str:
        choice = self.rng.choice([p for p in pool if p not in self.used])
        self.used.add(choice)
        return choice

    def other(self, pool: tuple[str, ...] | list[str]) -> str:
        """A distractor entity: any value of the pool except those the scenario uses."""
        return self.rng.choice([p for p in pool if p not in self.used])

    def one(self, options: list[str]) -> str:
        return self.rng.choice(options)

    def filler(self, text: str) -> str:
        if self.rng.random() < 0.25:
            return f"{self.rng.choice(FILLERS).capitalize()} {text[0].lower()}{text[1:]}"
        return text


def _meeting(e: _Ex) -> tuple[list[tuple[int, str]], str, dict]:
    place, day, time, topic = e.pick(PLACES), e.pick(DAYS), e.pick(TIMES), e.pick(TOPICS)
    accept = e.rng.random() < 0.7
    turns = [
        (
            1,
            e.one(
                [
                    f"Do you have time to talk about the {topic} this week?",
                    f"We need to go over the {topic} soon.",
                    f"Can we meet to discuss the {topic}?",
                ]
            ),
        ),
        (2, e.one(["Sure, when works for you?", "Of course. When?", "Yes, what did you have in mind?"])),
        (
            1,
            e.one(
                [
                    f"How about {day} at {time} at the {place}?",
                    f"Let's meet at the {place} on {day} at {time}.",
                    f"Is {day} at {time} fine? We could use the {place}.",
                ]
            ),
        ),
    ]
    if accept:
        turns.append(
            (
                2,
                e.one(
                    [f"{day} at {time} works. See you at the {place}.", "That works for me.", "Perfect, I'll be there."]
                ),
            )
        )
        summary = e.one(
            [
                f"#Person1# and #Person2# will meet at the {place} on {day} at {time} to discuss the {topic}.",
                f"#Person1# and #Person2# agree to discuss the {topic} at the {place} on {day} at {time}.",
                f"#Person2# agrees to meet #Person1# on {day} at {time} at the {place} about the {topic}.",
            ]
        )
    else:
        other = e.pick(DAYS)
        turns.append(
            (2, e.one([f"Sorry, I can't on {day}. Maybe {other}?", f"{day} is bad for me. What about {other}?"]))
        )
        turns.append((1, e.one([f"{other} is fine, same time.", f"OK, {other} then."])))
        summary = e.one(
            [
                f"#Person1# and #Person2# move their meeting about the {topic} to {other} at the {place}.",
                f"#Person2# cannot meet on {day}, so they will discuss the {topic} on {other} instead.",
            ]
        )
    return turns, summary, {"scenario": "meeting"}


def _shopping(e: _Ex) -> tuple[list[tuple[int, str]], str, dict]:
    item, price = e.pick(ITEMS), e.rng.randrange(15, 990, 5)
    buys = e.rng.random() < 0.6
    turns = [
        (
            1,
            e.one(
                [
                    f"Excuse me, how much is this {item}?",
                    f"I'm looking for a {item}.",
                    f"Hi, do you sell a {item} like this one?",
                ]
            ),
        ),
        (
            2,
            e.one(
                [
                    f"This {item} is {price} dollars.",
                    f"That one costs {price} dollars.",
                    f"We have it for {price} dollars.",
                ]
            ),
        ),
    ]
    if buys:
        turns.append((1, e.one(["Great, I'll take it.", "OK, I'll buy it.", "Sounds good, I'll pay by card."])))
        summary = e.one(
            [
                f"#Person1# buys a {item} for {price} dollars.",
                f"#Person1# decides to buy the {item}, which costs {price} dollars.",
                f"#Person2# sells #Person1# a {item} for {price} dollars.",
            ]
        )
    else:
        turns.append(
            (
                1,
                e.one(
                    ["That's too expensive for me.", "Hmm, I'll think about it.", "That's more than I wanted to spend."]
                ),
            )
        )
        summary = e.one(
            [
                f"#Person1# does not buy the {item} because {price} dollars is too much.",
                f"#Person1# finds the {item} too expensive at {price} dollars.",
            ]
        )
    return turns, summary, {"scenario": "shopping"}


def _travel(e: _Ex) -> tuple[list[tuple[int, str]], str, dict]:
    city, day, friend = e.pick(CITIES), e.pick(DAYS), e.pick(NAMES)
    turns = [
        (2, e.one(["Any plans for next week?", "You look excited. What's up?", "Are you going anywhere soon?"])),
        (
            1,
            e.one(
                [
                    f"I'm flying to {city} on {day}.",
                    f"I'm going to {city}! I leave on {day}.",
                    f"On {day} I fly to {city}.",
                ]
            ),
        ),
        (2, e.one(["Who are you visiting?", "Why there?", "Is it for work?"])),
        (1, e.one([f"My friend {friend} lives there.", f"I'm visiting {friend}.", f"{friend} invited me."])),
    ]
    summary = e.one(
        [
            f"#Person1# is flying to {city} on {day} to visit {friend}.",
            f"#Person1# tells #Person2# about a trip to {city} on {day} to see {friend}.",
            f"On {day}, #Person1# will go to {city} to visit {friend}.",
        ]
    )
    return turns, summary, {"scenario": "travel"}


def _lost(e: _Ex) -> tuple[list[tuple[int, str]], str, dict]:
    item, place, found_at = e.pick(ITEMS), e.pick(PLACES), e.pick(PLACES)
    turns = [
        (
            1,
            e.one(
                [
                    f"I think I left my {item} at the {place}.",
                    f"I can't find my {item}. I was at the {place}.",
                    f"Have you seen my {item}? I had it at the {place}.",
                ]
            ),
        ),
        (2, e.one(["Did you check your bag?", "When did you last see it?", "Let's think. Where else did you go?"])),
        (1, e.one([f"After the {place} I went to the {found_at}.", f"I also stopped by the {found_at}."])),
        (2, e.one([f"Let's call the {found_at}.", f"I bet it's at the {found_at}."])),
        (1, e.one([f"You're right, the {found_at} has it!", f"They found it at the {found_at}."])),
    ]
    summary = e.one(
        [
            f"#Person1# lost a {item} and finds it at the {found_at}, not the {place}.",
            f"#Person2# helps #Person1# find the {item}, which was at the {found_at}.",
            f"#Person1#'s {item} turns up at the {found_at}.",
        ]
    )
    return turns, summary, {"scenario": "lost"}


def _doctor(e: _Ex) -> tuple[list[tuple[int, str]], str, dict]:
    doctor, day, time = e.pick(NAMES), e.pick(DAYS), e.pick(TIMES)
    symptom = e.one(["a headache", "a sore throat", "back pain", "a fever", "a cough"])
    turns = [
        (2, e.one(["Good morning, how can I help you?", "Hello, clinic reception.", "Hi, what can I do for you?"])),
        (
            1,
            e.one(
                [
                    f"I've had {symptom} for three days.",
                    f"I need to see a doctor about {symptom}.",
                    f"I have {symptom} and it's getting worse.",
                ]
            ),
        ),
        (
            2,
            e.one(
                [
                    f"Doctor {doctor} can see you on {day} at {time}.",
                    f"There is a slot with Doctor {doctor} on {day} at {time}.",
                    f"How about {day} at {time} with Doctor {doctor}?",
                ]
            ),
        ),
        (1, e.one(["Yes, please book it.", "That's fine, thank you.", "Great, I'll come then."])),
    ]
    summary = e.one(
        [
            f"#Person1# has {symptom} and gets an appointment with Doctor {doctor} on {day} at {time}.",
            f"#Person2# books #Person1# to see Doctor {doctor} on {day} at {time} for {symptom}.",
        ]
    )
    return turns, summary, {"scenario": "doctor"}


def _party(e: _Ex) -> tuple[list[tuple[int, str]], str, dict]:
    host, place, day, item = e.pick(NAMES), e.pick(PLACES), e.pick(DAYS), e.pick(FOODS)
    turns = [
        (
            1,
            e.one(
                [
                    f"Are you coming to {host}'s birthday party?",
                    f"{host} is having a birthday party!",
                    f"Did you hear about {host}'s party?",
                ]
            ),
        ),
        (2, e.one(["When is it?", "Oh nice, where?", "I didn't know. When and where?"])),
        (1, e.one([f"On {day} at the {place}.", f"It's at the {place} on {day}.", f"{day}, at the {place}."])),
        (
            2,
            e.one(
                [f"I'll come and bring some {item}.", f"Count me in. I can make {item}.", f"Sure! I'll bring {item}."]
            ),
        ),
    ]
    summary = e.one(
        [
            f"#Person2# will go to {host}'s birthday party at the {place} on {day} and bring {item}.",
            f"#Person1# invites #Person2# to {host}'s party on {day} at the {place}; #Person2# brings {item}.",
        ]
    )
    return turns, summary, {"scenario": "party"}


def _interview(e: _Ex) -> tuple[list[tuple[int, str]], str, dict]:
    job, years, city = e.pick(JOBS), e.rng.randint(2, 15), e.pick(CITIES)
    turns = [
        (
            1,
            e.one(
                [
                    "Thanks for coming. Tell me about yourself.",
                    "Welcome. Why do you want this job?",
                    "Let's start. What is your background?",
                ]
            ),
        ),
        (
            2,
            e.one(
                [
                    f"I've worked as a {job} for {years} years.",
                    f"I have been a {job} for {years} years.",
                    f"For {years} years I worked as a {job}.",
                ]
            ),
        ),
        (1, e.one(["Where did you work before?", "And your last position?", "Where was that?"])),
        (2, e.one([f"At a company in {city}.", f"In {city}, at a small firm.", f"I was based in {city}."])),
    ]
    summary = e.one(
        [
            f"#Person2# interviews for a job and has worked as a {job} in {city} for {years} years.",
            f"#Person1# interviews #Person2#, a {job} with {years} years of experience from {city}.",
        ]
    )
    return turns, summary, {"scenario": "interview"}


def _restaurant(e: _Ex) -> tuple[list[tuple[int, str]], str, dict]:
    food, drink = e.pick(FOODS), e.pick(DRINKS)
    other = e.pick(FOODS)
    turns = [
        (2, e.one(["Are you ready to order?", "What can I get you?", "Good evening, what would you like?"])),
        (1, e.one([f"Is the {other} good today?", f"I was thinking about the {other}.", f"How is the {other}?"])),
        (2, e.one([f"The {other} is sold out, sorry.", f"We have no {other} left tonight."])),
        (
            1,
            e.one(
                [
                    f"Then I'll have the {food} and a {drink}.",
                    f"OK, the {food} please, and {drink}.",
                    f"I'll take the {food} with a {drink}.",
                ]
            ),
        ),
    ]
    summary = e.one(
        [
            f"#Person1# orders {food} and {drink} because the {other} is sold out.",
            f"The {other} is sold out, so #Person1# has {food} with {drink}.",
        ]
    )
    return turns, summary, {"scenario": "restaurant"}


def _distractor(e: _Ex) -> tuple[int, str]:
    """A turn unrelated to the outcome that mentions entities of the same types (the model must ignore it)."""
    speaker = e.rng.choice((1, 2))
    return speaker, e.one(
        [
            f"By the way, {e.other(NAMES)} said the {e.other(PLACES)} was crowded on {e.other(DAYS)}.",
            f"The weather has been awful since {e.other(DAYS)}.",
            f"I saw {e.other(NAMES)} at the {e.other(PLACES)} yesterday.",
            f"My {e.other(ITEMS)} broke again last week.",
            f"{e.other(NAMES)} just came back from {e.other(CITIES)}.",
            "How is your family doing?",
            "I'm so tired today.",
            f"Did you watch the game on {e.other(DAYS)}?",
            f"I had {e.other(FOODS)} for lunch, it was fine.",
            "Sorry, my phone keeps ringing.",
        ]
    )


DIALOGUE_SCENARIOS: list[Callable[[_Ex], tuple[list[tuple[int, str]], str, dict]]] = [
    _meeting,
    _shopping,
    _travel,
    _lost,
    _doctor,
    _party,
    _interview,
    _restaurant,
]


def _n_distractors(rng: random.Random, scale: float) -> int:
    # Long-tailed like real dialogues: most are short, a few are very long.
    return min(int(rng.lognormvariate(0.6, 0.9) * scale), 40)


def dialogue_example(rng: random.Random) -> dict:
    e = _Ex(rng)
    turns, summary, meta = rng.choice(DIALOGUE_SCENARIOS)(e)
    turns = list(turns)
    for _ in range(_n_distractors(rng, 1.0)):
        turns.insert(rng.randint(0, len(turns)), _distractor(e))
    lines = [f"#Person{s}#: {e.filler(t)}" for s, t in turns]
    return {"dialogue": "\n".join(lines), "summary": summary, **meta}


# --- news -----------------------------------------------------------------------------------------------------
COMPANIES = (
    "Acme Borealis Cobalt Dynamo Everest Fulcrum Granite Helix Ionic Juniper Keystone Lumen Meridian "
    "Nimbus Orion Pinnacle Quarry Redwood Summit Titan"
).split()


def news_example(rng: random.Random) -> dict:
    e = _Ex(rng)
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
    for _ in range(_n_distractors(rng, 1.2)):
        body.insert(rng.randint(1, len(body)), rng.choice(background))
    return {"article": " ".join(body), "highlights": "\n".join(highlights), "scenario": kind}


GENERATORS = {"dialogsum": dialogue_example, "news": news_example}
# "pretrain" is the tiny models' pretraining corpus (peftsum.models.pretrain): a stream no split shares.
SPLIT_OFFSET = {"train": 0, "validation": 1, "test": 2, "pretrain": 3}
DEFAULT_SIZES = {"train": 4000, "validation": 300, "test": 500, "pretrain": 2500}


def generate(name: str, split: str, n: int | None = None, seed: int = 1234) -> list[dict]:
    """``n`` examples of generator ``name`` for ``split`` (each split draws from its own random stream)."""
    make = GENERATORS[name]
    rng = random.Random(f"{name}/{split}/{seed}/{SPLIT_OFFSET[split]}")
    n = DEFAULT_SIZES[split] if n is None else n
    return [{"id": f"{name}-{split}-{i:06d}", **make(rng)} for i in range(n)]
