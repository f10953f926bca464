"""The demo store: a catalog and a behaviour log from simulated customers with hidden tastes.

``python -m recommender.simulate --out recommender/demo`` writes ``catalog.csv`` and
``events.csv`` (both generated here, so the project may ship them). The simulation:

- 8 departments, each a *kit* of 8 product types bought in a natural order (a tent, then a
  sleeping bag, then a pad...), each type in a "value" and a "premium" line: 128 products;
- every customer has hidden tastes: a main department (about 70 % of sessions), a second one,
  and a preference for the value or the premium line;
- a session picks a department by taste and moves the customer along that department's kit:
  views of the next product types (mostly in the preferred line), sometimes a cart add, and a
  purchase in about half of the sessions with a cart add. A third of the sessions are aimless
  browsing of random products that rarely ends in a purchase.

So the next item depends on the customer's own past (department, kit position, line), which a
sequence model can learn and popularity cannot; the demo's model card shows the difference.
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

DEPARTMENTS: dict[str, list[tuple[str, float, str]]] = {
    "Camping": [
        ("two-person tent", 149, "a freestanding dome tent with a rain fly, packs to 2 kg"),
        ("sleeping bag", 89, "a three-season mummy bag rated to -5 °C"),
        ("sleeping pad", 59, "an insulated inflatable pad, R-value 3.5"),
        ("camping stove", 45, "a compact gas stove that boils a litre in four minutes"),
        ("cook set", 39, "a nesting pot, pan and two mugs in hard-anodised aluminium"),
        ("headlamp", 29, "a rechargeable 400-lumen headlamp with a red-light mode"),
        ("water filter", 35, "a squeeze filter that removes 99.9 % of bacteria"),
        ("trekking poles", 55, "collapsible carbon poles with cork grips"),
    ],
    "Running": [
        ("road running shoes", 120, "cushioned daily trainers with a breathable mesh upper"),
        ("running socks", 15, "seamless, blister-free socks in a three-pack"),
        ("running shorts", 35, "light shorts with a zipped key pocket"),
        ("technical t-shirt", 30, "a quick-dry shirt with reflective details"),
        ("running belt", 22, "a bounce-free belt for phone and keys"),
        ("GPS watch", 199, "a running watch with GPS, heart rate and training plans"),
        ("trail running shoes", 135, "grippy shoes with a rock plate for rough paths"),
        ("hydration vest", 75, "a 5-litre vest with two soft flasks"),
    ],
    "Kitchen": [
        ("chef's knife", 65, "a 20 cm forged steel knife with a full tang"),
        ("cutting board", 29, "an end-grain beech board with juice groove"),
        ("knife sharpener", 25, "a two-stage sharpener for straight blades"),
        ("cast iron skillet", 45, "a pre-seasoned 26 cm skillet for stove and oven"),
        ("dutch oven", 89, "an enamelled 5-litre casserole"),
        ("spice rack", 32, "a rotating rack with 16 glass jars"),
        ("digital kitchen scale", 24, "a scale accurate to 1 g with tare"),
        ("stand mixer", 249, "a 5-litre tilt-head mixer with dough hook and whisk"),
    ],
    "Home office": [
        ("standing desk", 349, "an electric sit-stand desk with memory presets"),
        ("ergonomic chair", 279, "a mesh chair with adjustable lumbar support"),
        ("monitor arm", 69, "a gas-spring arm for screens up to 32 inches"),
        ("27-inch monitor", 229, "a 27-inch QHD IPS monitor with USB-C"),
        ("mechanical keyboard", 99, "a tenkeyless keyboard with hot-swap switches"),
        ("wireless mouse", 49, "a quiet ergonomic mouse with three device slots"),
        ("desk lamp", 59, "an LED lamp with adjustable colour temperature"),
        ("webcam", 79, "a 1080p webcam with autofocus and privacy shutter"),
    ],
    "Photography": [
        ("mirrorless camera", 899, "a 24 MP mirrorless body with 4K video"),
        ("standard zoom lens", 399, "a 24-70 mm f/4 zoom lens"),
        ("camera bag", 79, "a padded shoulder bag with dividers"),
        ("SD card", 29, "a 128 GB UHS-II card for fast bursts"),
        ("spare battery", 49, "a spare lithium battery for the camera"),
        ("tripod", 119, "a travel tripod with a ball head"),
        ("prime lens", 249, "a 50 mm f/1.8 prime for portraits"),
        ("lens filter kit", 59, "UV, polariser and ND filters"),
    ],
    "Garden": [
        ("garden hose", 39, "a 30 m kink-free hose with a spray gun"),
        ("pruning shears", 29, "bypass secateurs with a locking catch"),
        ("raised bed", 89, "a cedar raised bed, 120 x 60 cm"),
        ("potting soil", 12, "40 litres of peat-free compost"),
        ("seed starter kit", 25, "a propagator tray with 40 cells and a lid"),
        ("watering can", 22, "a 9-litre can with a brass rose"),
        ("garden gloves", 14, "thorn-proof gloves with leather palms"),
        ("compost bin", 69, "a 300-litre bin with a hatch"),
    ],
    "Gaming": [
        ("game controller", 59, "a wireless controller with hall-effect sticks"),
        ("gaming headset", 89, "a headset with a detachable boom microphone"),
        ("gaming mouse", 49, "a 26k-DPI mouse with five programmable buttons"),
        ("mouse pad", 19, "an extended cloth pad, 90 x 40 cm"),
        ("gaming keyboard", 109, "an RGB mechanical keyboard with linear switches"),
        ("capture card", 149, "a 4K60 pass-through capture card"),
        ("streaming microphone", 119, "a USB condenser microphone with a shock mount"),
        ("gaming chair", 249, "a racing-style chair with a recline lever"),
    ],
    "Baby": [
        ("baby monitor", 129, "a video monitor with night vision"),
        ("changing bag", 59, "a backpack changing bag with a mat"),
        ("baby carrier", 99, "an ergonomic carrier for newborns to toddlers"),
        ("bottle set", 35, "four anti-colic bottles with teats"),
        ("bottle steriliser", 49, "an electric steam steriliser"),
        ("high chair", 149, "an adjustable high chair with a tray"),
        ("play mat", 45, "a padded play mat with hanging toys"),
        ("stroller", 399, "a compact stroller that folds with one hand"),
    ],
}
LINES = (("Value", 1.0), ("Premium", 1.8))


@dataclass
class Customer:
    """Hidden tastes of one simulated customer."""

    id: str
    main: str
    second: str
    premium: bool
    progress: dict[str, int]


def catalog_rows() -> list[dict[str, str]]:
    """The demo catalog: every department × product type × line."""
    rows = []
    for dept, kit in DEPARTMENTS.items():
        for t, (kind, price, desc) in enumerate(kit):
            for line, factor in LINES:
                pid = f"{dept[:3].upper()}-{t + 1:02d}{line[0]}"
                rows.append({
                    "id": pid, "name": f"{line} {kind}", "category": f"{dept} | {kind}",
                    "price": f"{price * factor:.2f}", "url": f"https://shop.example/p/{pid}",
                    "description": f"{desc.capitalize()}. {line} line.", "in_stock": "true",
                })  # fmt: skip
    return rows


def _session(rng: random.Random, c: Customer, products: dict[str, list[str]]) -> tuple[list[str], bool]:
    """Viewed products of one session and whether it ends in a purchase."""
    if rng.random() < 0.3:  # aimless browsing
        pool = [p for ids in products.values() for p in ids]
        return rng.sample(pool, rng.randint(1, 3)), rng.random() < 0.05
    dept = c.main if rng.random() < 0.75 else c.second
    kit = products[dept]
    pos = c.progress.get(dept, 0) % (len(kit) // 2)
    views = []
    for step in range(rng.randint(1, 3)):
        t = (pos + step) % (len(kit) // 2)
        line = 1 if c.premium == (rng.random() < 0.85) else 0
        views.append(kit[t * 2 + line])
    bought = rng.random() < 0.45
    if bought:
        c.progress[dept] = pos + 1
    return views, bought


def _event(customer: str, product: str, kind: str, t: datetime, session: str) -> dict[str, str]:
    return {"customer_id": customer, "product_id": product, "kind": kind,
            "timestamp": t.isoformat(timespec="seconds"), "session_id": session, "value": ""}  # fmt: skip


def simulate(customers: int, sessions: int, seed: int, start: datetime) -> list[dict[str, str]]:
    """Behaviour events of ``customers`` over about ``sessions`` sessions each, in time order per customer."""
    rng = random.Random(seed)
    products: dict[str, list[str]] = {}
    for row in catalog_rows():
        products.setdefault(row["category"].split(" | ")[0], []).append(row["id"])
    depts = list(DEPARTMENTS)
    events = []
    for n in range(customers):
        main, second = rng.sample(depts, 2)
        c = Customer(f"cust{n + 1:04d}", main, second, rng.random() < 0.4, {})
        t = start + timedelta(hours=rng.uniform(0, 24 * 30))
        for s in range(max(1, int(rng.gauss(sessions, sessions / 3)))):
            views, bought = _session(rng, c, products)
            sid = f"{c.id}-s{s + 1}"
            for p in views:
                t += timedelta(seconds=rng.randint(20, 240))
                events.append(_event(c.id, p, "view", t, sid))
            if bought or rng.random() < 0.2:
                t += timedelta(seconds=rng.randint(10, 120))
                events.append(_event(c.id, views[-1], "cart", t, sid))
            if bought:
                t += timedelta(seconds=rng.randint(30, 300))
                events.append(_event(c.id, views[-1], "purchase", t, sid))
            t += timedelta(hours=rng.uniform(2, 96))
    return events


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows with a header."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    """CLI: write the demo catalog and behaviour log."""
    p = argparse.ArgumentParser(prog="python -m recommender.simulate", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("demo"))
    p.add_argument("--customers", type=int, default=400)
    p.add_argument("--sessions", type=int, default=12, help="mean sessions per customer")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "catalog.csv", catalog_rows())
    events = simulate(args.customers, args.sessions, args.seed, datetime(2026, 9, 1, tzinfo=UTC))
    write_csv(args.out / "events.csv", events)
    log.info("wrote %d products and %d events to %s", len(catalog_rows()), len(events), args.out)


if __name__ == "__main__":
    main()
