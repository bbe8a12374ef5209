"""Hidden goals drawn from the database: pick a row, derive what the user knows (the
constraints that single the row out, then the booking details) and what must be true at the
end (the expected booking rows and the calls that make them).

The user reveals the facts in pieces; the agent has to search, find the one row that fits,
and book it. A booking of another row, or with another detail, fails the goal however the
conversation reads.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..conversation import stable_hash
from ..errors import DialforgeError
from .database import Database
from .tools import StarApi, matches

# obviously synthetic customer names
CUSTOMER_NAMES = ("Alex Sample", "Sam Testperson", "Jordan Example", "Casey Placeholder", "Robin Fakename")
_DAYS = [
    "1st",
    "2nd",
    "3rd",
    "4th",
    "5th",
    "6th",
    "7th",
    "8th",
    "9th",
    "10th",
    "11th",
    "12th",
    "13th",
    "14th",
    "15th",
    "16th",
    "17th",
    "18th",
    "19th",
    "20th",
    "21st",
    "22nd",
    "23rd",
    "24th",
    "25th",
    "26th",
    "27th",
    "28th",
    "29th",
    "30th",
    "31st",
]


class Fact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    value: Any
    label: str  # how the user would say which fact it is


class RequiredCall(BaseModel):
    """A call the goal needs. `exact`: every argument here, with this value (others may be
    given); `consistent`: any call of this tool whose arguments agree with the goal."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    match: Literal["exact", "consistent"] = "exact"


class Goal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    task: str
    domain: str
    intent: str
    facts: list[Fact]
    target: dict[str, Any]  # the row the user wants
    expected: dict[str, list[dict[str, Any]]]  # booking tables at the end
    required_calls: list[RequiredCall]

    def instruction(self) -> str:
        known = "; ".join(f"{f.label}: {f.value}" for f in self.facts)
        return f"You want to {self.intent}. What you know: {known}."


@dataclass(frozen=True)
class TaskSpec:
    """A STAR task as a goal family: the search and booking APIs, the row fields a user may
    know (tried in order until they single one row out), and the booking details."""

    name: str
    domain: str
    search_api: str
    book_api: str
    intent: str
    known_fields: tuple[str, ...]
    always_known: tuple[str, ...] = ()
    key: str = "Name"  # the booking's row reference
    row_ok: Callable[[dict[str, Any]], bool] = lambda r: True
    details: Callable[[random.Random, dict[str, Any]], list[tuple[str, Any, str]]] = lambda rng, r: []


def _restaurant_details(rng: random.Random, row: dict[str, Any]) -> list[tuple[str, Any, str]]:
    size = rng.randint(2, max(2, min(8, int(row.get("MaxPartySize") or 8))))
    return [("Time", rng.choice(["6 pm", "7 pm", "8 pm"]), "Time"), ("PartySize", size, "Party size")]


def _hotel_details(rng: random.Random, row: dict[str, Any]) -> list[tuple[str, Any, str]]:
    start = rng.randint(0, 24)
    end = start + rng.randint(1, 4)
    return [("StartDate", _DAYS[start], "Check-in day"), ("EndDate", _DAYS[end], "Check-out day")]


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec(
            "restaurant_book",
            "restaurant",
            "restaurant_search",
            "restaurant_book",
            "book a table at a restaurant",
            ("Food", "Location", "Cost", "AverageRating"),
            row_ok=lambda r: r.get("TakesReservations") is True,
            details=_restaurant_details,
        ),
        TaskSpec(
            "hotel_book",
            "hotel",
            "hotel_search",
            "hotel_book",
            "book a hotel room",
            ("Location", "Cost", "AverageRating", "Service"),
            row_ok=lambda r: r.get("TakesReservations") is True,
            details=_hotel_details,
        ),
        TaskSpec(
            "plane_book",
            "plane",
            "plane_search",
            "plane_book",
            "book a flight",
            ("Class", "Airline", "ArrivalTime"),
            always_known=("DepartureCity", "ArrivalCity", "Date"),
            key="id",
            row_ok=lambda r: r.get("DepartureCity") != r.get("ArrivalCity"),
        ),
    )
}

_LABELS = {
    "Food": "Cuisine",
    "AverageRating": "Average rating",
    "DepartureCity": "From",
    "ArrivalCity": "To",
    "ArrivalTime": "Arrival time",
    "Date": "Day of the flight",
}


def _single_out(spec: TaskSpec, rows: list[dict[str, Any]], row: dict[str, Any]) -> list[str] | None:
    """The fewest leading known fields (after the always-known ones) whose values fit this
    row alone; None when no combination does."""
    chosen = [f for f in spec.always_known if f in row]
    for f in [None, *spec.known_fields]:
        if f is not None:
            if f not in row:
                continue
            chosen.append(f)
        if chosen and [r for r in rows if matches(r, {k: row[k] for k in chosen})] == [row]:
            return chosen
    return None


def make_goals(spec: TaskSpec, db: Database, apis: dict[str, StarApi], n: int, seed: int = 0) -> list[Goal]:
    """`n` goals of one task (rows taken in a seeded order, reused when fewer rows fit)."""
    rows = db.rows(spec.domain)
    usable = [(r, fields) for r in rows if spec.row_ok(r) and (fields := _single_out(spec, rows, r)) is not None]
    if not usable:
        raise DialforgeError(
            f"task {spec.name}: no {spec.domain} row can be singled out by {', '.join(spec.known_fields)} "
            "(draw another database: db_seed, db_rows)"
        )
    rng = random.Random(int(stable_hash("goals", spec.name, seed), 16))
    order = rng.sample(usable, len(usable))
    book = apis[spec.book_api]
    goals = []
    for i in range(n):
        row, fields = order[i % len(order)]
        facts = [Fact(field=f, value=row[f], label=_LABELS.get(f, f)) for f in fields]
        details = spec.details(rng, row)
        name = CUSTOMER_NAMES[rng.randrange(len(CUSTOMER_NAMES))]
        facts += [Fact(field=f, value=v, label=lab) for f, v, lab in details]
        facts.append(Fact(field="CustomerName", value=name, label="Your name"))
        booking = {spec.key: row[spec.key], **{f: v for f, v, _ in details}, "CustomerName": name}
        booking = {k: booking[k] for k in book.state_fields if k in booking}
        required = [
            RequiredCall(name=spec.search_api, arguments={f: row[f] for f in fields}, match="consistent"),
            RequiredCall(name=spec.book_api, arguments={**booking, "RequestType": "Book"}, match="exact"),
        ]
        gid = stable_hash("goal", spec.name, seed, i, booking)
        goals.append(
            Goal(
                id=gid,
                task=spec.name,
                domain=spec.domain,
                intent=spec.intent,
                facts=facts,
                target=dict(row),
                expected={f"{spec.domain}_bookings": [booking]},
                required_calls=required,
            )
        )
    return goals
