"""Deterministic fake values for the demo business, shared by the seed loader and the workload.

Every generator takes a `random.Random`, so the same seed gives the same rows. The pools mix plain
ASCII with accents, apostrophes, CJK and emoji, and text columns alternate between NULL, '' and
content, so the CDC pipeline is exercised on the values that usually break encoders.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

# The seed timeline starts here; the workload continues after the newest seeded timestamp.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

FIRST_NAMES = [
    "Anna", "Zoë", "José", "Björn", "Ólafur", "Sinéad", "Łukasz", "Chloé", "Mohammed", "Søren",
    "Nguyễn", "Aiyana", "Priya", "Kwame", "Mei", "Jürgen", "François", "Ana María", "Tomás", "Yuki",
    "Ингрид", "Ελένη", "Sam", "Li",
]  # fmt: skip
LAST_NAMES = [
    "Müller", "García", "O'Brien", "Smith", "Ødegaard", "Kowalski", "Dubois", "van der Berg", "王",
    "Nakamura", "Novák", "Çelik", "Núñez", "Okafor", "Schmidt-Rüdiger", "D'Angelo", "Ng", "Ivanova",
]  # fmt: skip
CITIES = [
    ("Berlin", "DE"), ("Lisboa", "PT"), ("København", "DK"), ("Kraków", "PL"), ("Zürich", "CH"),
    ("São Paulo", "BR"), ("Montréal", "CA"), ("東京", "JP"), ("Reykjavík", "IS"), ("Austin", "US"),
    ("Lagos", "NG"), ("Αθήνα", "GR"),
]  # fmt: skip
STREETS = ["Hauptstraße", "Rua Augusta", "Main St", "Rue de l'Église", "Strøget", "Ulica Długa"]
NOTES = [
    None, None, None, "", "Leave at the door 🚪", "Gift wrap 🎁 please", "Call before delivery ☎️",
    "🚚💨", "Zażółć gęślą jaźń", "Größe prüfen", "— thanks! —", "Line one\nLine two",
    "Tab\tseparated", "Quote \"this\" and 'that'", "Back\\slash", "   padded   ", "😀" * 20,
]  # fmt: skip
PRODUCT_NOUNS = [
    "Mug", "Notebook", "Backpack", "Lamp", "Headphones", "Kettle", "Chair", "Desk Mat", "Umbrella",
    "Water Bottle", "Teapot", "Scarf", "Keyboard", "Plant Pot", "Bike Light", "Yoga Mat",
]  # fmt: skip
PRODUCT_ADJECTIVES = [
    "Classic", "Eco", "Deluxe", "Mini", "Smart", "Vintage", "Ultra", "Crème", "Nordic", "Señor",
    "Über", "Zen 禅",
]  # fmt: skip
TAGS = ["new", "sale", "eco", "bestseller", "gift", "limited", "bundle", "ünïcödé", "🔥", "b2b"]
SEGMENTS = ["vip", "newsletter", "wholesale", "returning", "at_risk", "student", "früh-bucher"]
PAYMENT_METHODS = ["card", "paypal", "sepa", "klarna", "gift_card", "bank_transfer"]
CARRIERS = ["DHL", "UPS", "PostNord", "Correos", "Poczta Polska", "ヤマト運輸", None]
SUPPLIER_WORDS = ["Acme", "Nordwind", "Sol", "Kaizen", "Ferro", "Blåbær", "Atlas", "Polar"]
SUPPLIER_SUFFIXES = ["GmbH", "Ltd", "S.A.", "A/S", "Sp. z o.o.", "K.K.", "& Söhne", "Inc."]
# The inventory system tracks the shop's catalogue SKUs plus a few that are not sold online.
SEED_SKU_COUNT = 120


def sku_for(number: int) -> str:
    """The SKU of catalogue item `number` (shared by the shop and the inventory)."""
    return f"SKU-{number:05d}"


def new_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from `rng` (uuid4() would break determinism)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def money(rng: random.Random, low: float, high: float) -> Decimal:
    """A 2-decimal amount in [low, high]."""
    return Decimal(rng.randint(round(low * 100), round(high * 100))) / 100


def micro_jitter(rng: random.Random, seconds: float) -> timedelta:
    """A random offset of up to `seconds`, with microsecond resolution."""
    return timedelta(microseconds=rng.randint(0, int(seconds * 1_000_000)))


def person_name(rng: random.Random) -> str:
    """A full name, sometimes with non-Latin script or apostrophes."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def email_for(name: str, rng: random.Random) -> str:
    """A unique-enough ASCII e-mail address derived from `name`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = "".join(c for c in ascii_name.lower().replace(" ", ".") if c.isalnum() or c == ".")
    return f"{slug.strip('.') or 'user'}.{rng.getrandbits(40):010x}@example.com"


def phone(rng: random.Random) -> str | None:
    """NULL (unknown), '' (declined) or a number."""
    roll = rng.random()
    if roll < 0.15:
        return None
    if roll < 0.25:
        return ""
    return f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}"


def note(rng: random.Random) -> str | None:
    """A free-text note: often NULL, sometimes '', sometimes unicode or control characters."""
    return rng.choice(NOTES)


def address(rng: random.Random) -> dict[str, Any]:
    """A shipping address as a JSON object (nested, with optional keys)."""
    city, country = rng.choice(CITIES)
    addr: dict[str, Any] = {
        "street": f"{rng.choice(STREETS)} {rng.randint(1, 250)}",
        "city": city,
        "postcode": f"{rng.randint(1000, 99999)}",
        "country": country,
    }
    if rng.random() < 0.3:
        addr["line2"] = rng.choice(["Apt. 4B", "c/o Müller", "3º andar", "", "🏢 Floor 7"])
    if rng.random() < 0.2:
        lat, lon = round(rng.uniform(-60, 70), 6), round(rng.uniform(-170, 170), 6)
        addr["geo"] = {"lat": lat, "lon": lon}
    return addr


def preferences(rng: random.Random) -> dict[str, Any]:
    """Customer preferences as a JSON object with mixed value types."""
    prefs: dict[str, Any] = {
        "newsletter": rng.random() < 0.5,
        "language": rng.choice(["en", "de", "pt-BR", "ja", "pl"]),
    }
    if rng.random() < 0.4:
        prefs["sizes"] = rng.sample(["XS", "S", "M", "L", "XL"], k=rng.randint(1, 3))
    if rng.random() < 0.2:
        prefs["nickname"] = rng.choice(["", "😎", "Ms. O'Hara", None])
    return prefs


def product_attributes(rng: random.Random) -> dict[str, Any] | None:
    """Product attributes (JSON) or NULL."""
    if rng.random() < 0.15:
        return None
    return {
        "color": rng.choice(["red", "blue", "schwarz", "vert", "#00ff7f"]),
        "dimensions_cm": [rng.randint(1, 80), rng.randint(1, 80), rng.randint(1, 80)],
        "warranty_years": rng.choice([0, 1, 2, 5]),
        "fragile": rng.random() < 0.2,
    }


def product_name(rng: random.Random) -> str:
    """A product name."""
    return f"{rng.choice(PRODUCT_ADJECTIVES)} {rng.choice(PRODUCT_NOUNS)}"


def tags(rng: random.Random, pool: list[str] = TAGS, most: int = 3) -> list[str]:
    """A sorted set of 0..`most` tags (possibly empty)."""
    return sorted(rng.sample(pool, k=rng.randint(0, most)))


def supplier_name(rng: random.Random) -> str:
    """A supplier company name."""
    first, second = rng.choice(SUPPLIER_WORDS), rng.choice(SUPPLIER_WORDS)
    return f"{first} {second} {rng.choice(SUPPLIER_SUFFIXES)}"


def supplier_terms(rng: random.Random) -> dict[str, Any] | None:
    """Supplier payment terms (JSON) or NULL."""
    if rng.random() < 0.1:
        return None
    return {
        "net_days": rng.choice([14, 30, 45, 60]),
        "incoterm": rng.choice(["EXW", "FOB", "DDP", "CIF"]),
        "discounts": [
            {"min_qty": q, "pct": p} for q, p in [(100, 2.5), (1000, 5.0)][: rng.randint(0, 2)]
        ],
    }


def manifest(rng: random.Random, sku: str, quantity: int) -> dict[str, Any]:
    """A shipment manifest (JSON)."""
    return {
        "lines": [{"sku": sku, "qty": quantity}],
        "pallets": rng.randint(1, 12),
        "temperature_c": rng.choice([None, 4, -18, 21.5]),
        "seal": f"{rng.getrandbits(32):08X}",
    }


def birth_date(rng: random.Random) -> date | None:
    """A birth date, or NULL for customers who did not say."""
    if rng.random() < 0.3:
        return None
    return date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 65))
