"""The word pools synthetic examples draw from, and the per-example chooser that keeps distractors distinct."""

from __future__ import annotations

import random

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


class Choices:
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


def n_distractors(rng: random.Random, scale: float) -> int:
    # Long-tailed like real dialogues: most are short, a few are very long.
    return min(int(rng.lognormvariate(0.6, 0.9) * scale), 40)
