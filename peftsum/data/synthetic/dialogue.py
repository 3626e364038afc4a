"""DialogSum-shaped examples: a scenario's turns between #Person1# and #Person2#, distractor turns, fillers,
and an abstractive one-line summary."""

from __future__ import annotations

import random
from collections.abc import Callable

from peftsum.data.synthetic.vocab import (
    CITIES,
    DAYS,
    DRINKS,
    FOODS,
    ITEMS,
    JOBS,
    NAMES,
    PLACES,
    TIMES,
    TOPICS,
    Choices,
    n_distractors,
)


def _meeting(e: Choices) -> tuple[list[tuple[int, str]], str, dict]:
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


def _shopping(e: Choices) -> tuple[list[tuple[int, str]], str, dict]:
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


def _travel(e: Choices) -> tuple[list[tuple[int, str]], str, dict]:
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


def _lost(e: Choices) -> tuple[list[tuple[int, str]], str, dict]:
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


def _doctor(e: Choices) -> tuple[list[tuple[int, str]], str, dict]:
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


def _party(e: Choices) -> tuple[list[tuple[int, str]], str, dict]:
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


def _interview(e: Choices) -> tuple[list[tuple[int, str]], str, dict]:
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


def _restaurant(e: Choices) -> tuple[list[tuple[int, str]], str, dict]:
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


def _distractor(e: Choices) -> tuple[int, str]:
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


DIALOGUE_SCENARIOS: list[Callable[[Choices], tuple[list[tuple[int, str]], str, dict]]] = [
    _meeting,
    _shopping,
    _travel,
    _lost,
    _doctor,
    _party,
    _interview,
    _restaurant,
]


def dialogue_example(rng: random.Random) -> dict:
    e = Choices(rng)
    turns, summary, meta = rng.choice(DIALOGUE_SCENARIOS)(e)
    turns = list(turns)
    for _ in range(n_distractors(rng, 1.0)):
        turns.insert(rng.randint(0, len(turns)), _distractor(e))
    lines = [f"#Person{s}#: {e.filler(t)}" for s, t in turns]
    return {"dialogue": "\n".join(lines), "summary": summary, **meta}
