"""Deterministic Sakila-shaped rows (Pagila and Sakila for MySQL ship their schema only).

Both datasets describe the same DVD-rental business, so one generator serves both; each loader keeps
the columns its schema has. Rows are generated parents first and every foreign key points at a row
generated before it, so the data satisfies every FK whatever order the loader inserts in. A fixed seed
makes two loads identical.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

Row = dict[str, Any]

FIRST = ["Ána", "Björn", "Chloé", "Dmitri", "Émile", "Fatima", "Grace", "Hiro", "Ines", "José",
         "Kai", "Léa", "Mónica", "Nils", "O'Neil", "Priya", "Quinn", "Renée", "Søren", "Zoë"]  # fmt: skip
LAST = ["Åberg", "Brontë", "Castañeda", "D'Arcy", "Eriksen", "Fischer", "García", "Høeg", "Ivanov",
        "Jäger", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Peña", "Quiñones", "Řezník"]  # fmt: skip
WORDS = ["Epic", "Drama", "Astounding", "Saga", "Boring", "Lacklusture", "Intrepid", "Emotional",
         "Touching", "Fateful", "Yarn", "Story", "Documentary", "Reflection", "Panorama", "Café",
         "Shark", "Dentist", "Feminist", "Moose", "Mad Scientist", "Boat", "Database Administrator"]  # fmt: skip
RATINGS = ["G", "PG", "PG-13", "R", "NC-17"]
FEATURES = ["Trailers", "Commentaries", "Deleted Scenes", "Behind the Scenes"]
LANGUAGES = ["English", "Italian", "Japanese", "Mandarin", "French", "German"]
CATEGORIES = ["Action", "Animation", "Children", "Classics", "Comedy", "Documentary", "Drama",
              "Family", "Foreign", "Games", "Horror", "Music", "New", "Sci-Fi", "Sports", "Travel"]  # fmt: skip
COUNTRIES = ["Afghanistan", "Algeria", "Brazil", "Canada", "Côte d'Ivoire", "Denmark", "Egypt",
             "España", "Finland", "日本", "Réunion", "Türkiye", "Україна", "Việt Nam"]  # fmt: skip


def generate(
    seed: int = 1,
    *,
    films: int = 150,
    customers: int = 120,
    rentals: int = 900,
    start: dt.datetime = dt.datetime(2022, 1, 3, tzinfo=dt.UTC),
    days: int = 700,
) -> dict[str, list[Row]]:
    """Tables of rows keyed by table name, parents before children."""
    rng = random.Random(seed)
    stamp = dt.datetime(2022, 1, 1, 8, 0, 0, 123456, tzinfo=dt.UTC)
    out: dict[str, list[Row]] = {}
    out["language"] = [
        {"language_id": i, "name": n, "last_update": stamp} for i, n in enumerate(LANGUAGES, 1)
    ]
    out["category"] = [
        {"category_id": i, "name": n, "last_update": stamp} for i, n in enumerate(CATEGORIES, 1)
    ]
    out["country"] = [
        {"country_id": i, "country": n, "last_update": stamp} for i, n in enumerate(COUNTRIES, 1)
    ]
    out["city"] = [
        {"city_id": i, "city": f"{rng.choice(WORDS)} City {i}",
         "country_id": rng.randint(1, len(COUNTRIES)), "last_update": stamp}
        for i in range(1, 61)
    ]  # fmt: skip
    out["address"] = [
        {"address_id": i, "address": f"{rng.randint(1, 999)} {rng.choice(LAST)} Street",
         "address2": rng.choice([None, "", "Apt. 2"]), "district": rng.choice(WORDS)[:20],
         "city_id": rng.randint(1, 60), "postal_code": rng.choice([None, f"{rng.randint(0, 99999):05d}"]),
         "phone": f"+{rng.randint(10**9, 10**10)}", "last_update": stamp}
        for i in range(1, customers + 5)
    ]  # fmt: skip
    out["actor"] = [
        {"actor_id": i, "first_name": rng.choice(FIRST), "last_name": rng.choice(LAST),
         "last_update": stamp}
        for i in range(1, 81)
    ]  # fmt: skip
    # store and staff reference each other (store.manager_staff_id, staff.store_id): generated as
    # a pair; the loaders insert them with FK checks deferred.
    out["store"] = [
        {"store_id": i, "manager_staff_id": i, "address_id": i, "last_update": stamp}
        for i in (1, 2)
    ]
    out["staff"] = [
        {"staff_id": i, "first_name": rng.choice(FIRST), "last_name": rng.choice(LAST),
         "address_id": i + 2, "email": f"staff{i}@example.com", "store_id": i, "active": True,
         "username": f"staff{i}", "password": "8cb2237d0679ca88db6464eac60da96345513964",
         "last_update": stamp, "picture": bytes(rng.getrandbits(8) for _ in range(64 * i))}
        for i in (1, 2)
    ]  # fmt: skip
    out["film"] = []
    for i in range(1, films + 1):
        title = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}".upper()
        description = (
            f"A {rng.choice(WORDS)} {rng.choice(WORDS)} of a {rng.choice(WORDS)} "
            f"who must meet a {rng.choice(WORDS)} in {rng.choice(COUNTRIES)}"
        )
        out["film"].append(
            {"film_id": i, "title": title, "description": rng.choice([description, None, ""]),
             "release_year": rng.randint(1901, 2155) if rng.random() < 0.1 else 2006,
             "language_id": rng.randint(1, 6), "original_language_id": rng.choice([None, 2, 3]),
             "rental_duration": rng.randint(3, 7),
             "rental_rate": Decimal(rng.choice(["0.99", "2.99", "4.99"])),
             "length": rng.choice([None, rng.randint(46, 185)]),
             "replacement_cost": Decimal(f"{rng.randint(9, 29)}.99"),
             "rating": rng.choice(RATINGS),
             "special_features": sorted(rng.sample(FEATURES, rng.randint(0, 3)), key=FEATURES.index),
             "last_update": stamp}
        )  # fmt: skip
    out["film_actor"] = [
        {"actor_id": a, "film_id": f, "last_update": stamp}
        for f in range(1, films + 1)
        for a in sorted(rng.sample(range(1, 81), rng.randint(1, 5)))
    ]
    out["film_category"] = [
        {"film_id": f, "category_id": rng.randint(1, 16), "last_update": stamp}
        for f in range(1, films + 1)
    ]
    out["customer"] = [
        {"customer_id": i, "store_id": rng.randint(1, 2), "first_name": rng.choice(FIRST),
         "last_name": rng.choice(LAST), "email": rng.choice([None, f"c{i}@example.org"]),
         "address_id": i + 4, "active": rng.random() < 0.9,
         "create_date": (start - dt.timedelta(days=rng.randint(1, 300))).date(),
         "last_update": stamp}
        for i in range(1, customers + 1)
    ]  # fmt: skip
    out["inventory"] = [
        {"inventory_id": i, "film_id": rng.randint(1, films), "store_id": rng.randint(1, 2),
         "last_update": stamp}
        for i in range(1, films * 3 + 1)
    ]  # fmt: skip
    out["rental"], out["payment"] = [], []
    for i in range(1, rentals + 1):
        rented = start + dt.timedelta(seconds=rng.randint(0, days * 86400), microseconds=i)
        returned = rented + dt.timedelta(days=rng.randint(1, 9)) if rng.random() < 0.95 else None
        customer, staff = rng.randint(1, customers), rng.randint(1, 2)
        out["rental"].append(
            {"rental_id": i, "rental_date": rented, "inventory_id": rng.randint(1, films * 3),
             "customer_id": customer, "return_date": returned, "staff_id": staff,
             "last_update": stamp}
        )  # fmt: skip
        out["payment"].append(
            {"payment_id": i, "customer_id": customer, "staff_id": staff, "rental_id": i,
             "amount": Decimal(rng.randint(0, 1199)) / 100,
             "payment_date": rented + dt.timedelta(minutes=rng.randint(0, 600))}
        )  # fmt: skip
    return out
