"""The synthetic retailer's catalog: a department > category > type tree with text and prices.

Part of ``recsys.data.synthetic``. Each category has its own words (so titles and descriptions
carry the category), each department its own brands (so the brand is a learnable word), prices
are lognormal around a category median scaled by the brand tier, and popularity follows a power
law within each category. Some products launch during the period (a few in its last four weeks,
for cold-product evaluation) and a few are discontinued.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data.schema import CATEGORY_SEP

# (department, category, basket weight, median price, season, words); season peaks drive a
# yearly cycle of the category's share (summer ~ day 190, winter ~ day 15, holiday ~ day 355).
VOCAB: list[tuple[str, str, float, float, str | None, tuple[str, ...]]] = [
    ("PRODUCE", "FRUIT", 3.0, 3.0, "summer", ("apple", "banana", "orange", "berries", "grape")),
    ("PRODUCE", "VEGETABLES", 3.0, 2.5, None, ("carrot", "onion", "tomato", "pepper", "cucumber")),
    ("PRODUCE", "SALAD", 1.5, 3.5, "summer", ("lettuce", "spinach", "greens", "kale", "romaine")),
    ("PRODUCE", "HERBS", 0.6, 2.0, None, ("basil", "parsley", "cilantro", "mint", "dill")),
    ("PRODUCE", "POTATOES", 1.2, 3.0, "winter", ("potato", "russet", "yukon", "yam", "spud")),
    ("DAIRY", "MILK", 3.0, 2.8, None, ("milk", "skim", "lactose", "gallon", "dairy")),
    ("DAIRY", "CHEESE", 2.0, 5.0, None, ("cheddar", "mozzarella", "gouda", "parmesan", "brie")),
    ("DAIRY", "YOGURT", 1.8, 1.5, None, ("yogurt", "greek", "probiotic", "cultured", "skyr")),
    ("DAIRY", "BUTTER", 0.8, 4.0, "holiday", ("butter", "salted", "unsalted", "margarine", "ghee")),
    ("DAIRY", "EGGS", 1.5, 3.5, None, ("eggs", "dozen", "yolk", "omelet", "brown")),
    ("BAKERY", "BREAD", 2.2, 3.5, None, ("loaf", "sourdough", "wheat", "rye", "baguette")),
    ("BAKERY", "PASTRIES", 0.8, 2.5, None, ("croissant", "muffin", "danish", "scone", "donut")),
    ("BAKERY", "CAKES", 0.4, 12.0, "holiday", ("cake", "cupcake", "frosting", "sponge", "torte")),
    ("BAKERY", "TORTILLAS", 0.7, 3.0, None, ("tortilla", "wrap", "flatbread", "pita", "naan")),
    ("MEAT", "BEEF", 1.2, 9.0, "summer", ("steak", "sirloin", "ribeye", "brisket", "burger")),
    ("MEAT", "CHICKEN", 1.6, 7.0, None, ("chicken", "breast", "thigh", "wings", "drumstick")),
    ("MEAT", "PORK", 0.8, 6.0, None, ("pork", "bacon", "ham", "sausage", "chop")),
    ("MEAT", "DELI MEAT", 1.0, 5.0, None, ("turkey", "salami", "sliced", "pastrami", "bologna")),
    ("SEAFOOD", "FISH", 0.5, 10.0, None, ("salmon", "cod", "tilapia", "fillet", "trout")),
    ("SEAFOOD", "SHELLFISH", 0.25, 14.0, "holiday", ("shrimp", "crab", "lobster", "scallop",
                                                    "mussels")),
    ("FROZEN", "FROZEN MEALS", 1.2, 4.0, "winter", ("dinner", "entree", "microwave", "lasagna",
                                                   "burrito")),
    ("FROZEN", "ICE CREAM", 0.8, 5.0, "summer", ("icecream", "gelato", "sorbet", "pint", "cone")),
    ("FROZEN", "FROZEN VEGETABLES", 0.7, 2.5, None, ("peas", "corn", "broccoli", "edamame",
                                                     "stirfry")),
    ("FROZEN", "PIZZA", 0.8, 6.0, None, ("pizza", "crust", "pepperoni", "margherita", "calzone")),
    ("PANTRY", "PASTA", 1.0, 2.0, None, ("spaghetti", "penne", "macaroni", "noodles", "fusilli")),
    ("PANTRY", "RICE AND GRAINS", 0.7, 3.0, None, ("rice", "quinoa", "basmati", "oats",
                                                   "couscous")),
    ("PANTRY", "CANNED GOODS", 1.2, 1.5, "winter", ("beans", "soup", "chickpeas", "tuna",
                                                    "broth")),
    ("PANTRY", "SAUCES", 1.0, 3.0, None, ("salsa", "ketchup", "marinara", "dressing", "mayo")),
    ("PANTRY", "BAKING", 0.6, 3.0, "holiday", ("flour", "sugar", "yeast", "vanilla", "cocoa")),
    ("PANTRY", "CEREAL", 1.3, 4.5, None, ("cereal", "granola", "flakes", "muesli", "crunch")),
    ("PANTRY", "SPICES", 0.4, 4.0, None, ("cinnamon", "paprika", "oregano", "cumin", "nutmeg")),
    ("BEVERAGES", "SODA", 1.5, 2.0, "summer", ("cola", "soda", "lemonade", "fizzy", "rootbeer")),
    ("BEVERAGES", "JUICE", 1.0, 3.5, None, ("juice", "smoothie", "nectar", "pulp", "squeezed")),
    ("BEVERAGES", "COFFEE", 0.9, 8.0, "winter", ("coffee", "espresso", "roast", "arabica",
                                                 "decaf")),
    ("BEVERAGES", "TEA", 0.5, 4.0, "winter", ("tea", "chamomile", "earlgrey", "matcha", "herbal")),
    ("BEVERAGES", "WATER", 1.0, 1.2, "summer", ("water", "sparkling", "spring", "mineral",
                                                "seltzer")),
    ("BEVERAGES", "BEER AND WINE", 0.8, 12.0, "holiday", ("beer", "lager", "wine", "merlot",
                                                          "chardonnay")),
    ("SNACKS", "CHIPS", 1.3, 3.5, "summer", ("chips", "crisps", "nachos", "pretzels", "popcorn")),
    ("SNACKS", "COOKIES", 1.0, 3.5, "holiday", ("cookies", "biscuit", "oatmeal", "shortbread",
                                                "wafer")),
    ("SNACKS", "CANDY", 0.8, 2.0, "holiday", ("candy", "chocolate", "gummy", "caramel",
                                              "licorice")),
    ("SNACKS", "NUTS", 0.5, 6.0, None, ("almonds", "cashews", "peanuts", "pistachio", "trail")),
    ("HOUSEHOLD", "CLEANING", 0.6, 4.0, None, ("cleaner", "spray", "bleach", "wipes", "scrub")),
    ("HOUSEHOLD", "LAUNDRY", 0.4, 10.0, None, ("detergent", "softener", "pods", "stain", "rinse")),
    ("HOUSEHOLD", "PAPER", 0.7, 8.0, None, ("towels", "tissue", "napkins", "toilet", "roll")),
    ("HOUSEHOLD", "STORAGE", 0.3, 4.0, None, ("foil", "bags", "wrap", "containers", "zipper")),
    ("PERSONAL CARE", "HAIR CARE", 0.3, 6.0, None, ("shampoo", "conditioner", "styling", "gel",
                                                    "mousse")),
    ("PERSONAL CARE", "ORAL CARE", 0.3, 4.0, None, ("toothpaste", "toothbrush", "floss",
                                                    "mouthwash", "whitening")),
    ("PERSONAL CARE", "SKIN CARE", 0.3, 7.0, "summer", ("lotion", "sunscreen", "moisturizer",
                                                        "soap", "balm")),
    ("PERSONAL CARE", "HEALTH", 0.3, 9.0, "winter", ("vitamins", "painrelief", "allergy",
                                                     "bandages", "cough")),
    ("BABY", "DIAPERS", 0.2, 20.0, None, ("diapers", "pullups", "babywipes", "newborn",
                                          "toddler")),
    ("BABY", "BABY FOOD", 0.2, 2.5, None, ("puree", "formula", "pouch", "teething", "infant")),
    ("PET", "DOG", 0.3, 15.0, None, ("dog", "kibble", "chew", "puppy", "leash")),
    ("PET", "CAT", 0.3, 10.0, None, ("cat", "litter", "kitten", "catnip", "scratcher")),
]
DEPARTMENTS = tuple(dict.fromkeys(v[0] for v in VOCAB))
CATEGORY_INDEX = {v[1]: k for k, v in enumerate(VOCAB)}
MODIFIERS = ("organic", "classic", "premium", "light", "family size", "spicy", "honey",
             "original", "whole grain", "gluten free", "mini", "fresh", "smoked", "sweet",
             "sea salt", "double", "natural", "garden", "golden", "rustic", "zesty", "creamy",
             "crunchy", "lite")
SEASON_PEAK = {"summer": 190.0, "winter": 15.0, "holiday": 355.0}
_SYLLABLES = ("ka", "lo", "mi", "ra", "ve", "to", "su", "na", "bel", "cor", "dan", "el", "fi",
              "gra", "hal", "ju", "ken", "lu", "mar", "no", "pe", "qui", "ros", "sa", "tan",
              "vo", "win", "xa", "yo", "zen")
PRIVATE_LABEL = "Hometown"
TIERS = ("private", "national", "premium")
TIER_PRICE = np.array([0.72, 1.0, 1.5])
_UNITS = {"PRODUCE": "lb", "DAIRY": "oz", "BAKERY": "oz", "MEAT": "lb", "SEAFOOD": "lb",
          "FROZEN": "oz", "PANTRY": "oz", "BEVERAGES": "fl oz", "SNACKS": "oz",
          "HOUSEHOLD": "ct", "PERSONAL CARE": "fl oz", "BABY": "ct", "PET": "lb"}
POPULARITY_EXPONENT = 1.3  # weight of the r-th product of a category ~ r ** -exponent


@dataclass
class Catalog:
    """Integer arrays describing ``n`` products (position = internal product index)."""

    category: np.ndarray      # (n,) int32 index into VOCAB
    product_type: np.ndarray  # (n,) int32 index into MODIFIERS
    brand: np.ndarray         # (n,) object str
    tier: np.ndarray          # (n,) int8 index into TIERS
    price: np.ndarray         # (n,) float64
    rel_price: np.ndarray     # (n,) float64 price / category median
    popularity: np.ndarray    # (n,) float64 within-category weight
    launch_day: np.ndarray    # (n,) int32, first day it can sell (0 = on sale before start)
    end_day: np.ndarray       # (n,) int32, first day it no longer sells (days = never ends)
    frame: pd.DataFrame       # the canonical products table (without product_id)


def _brands(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        k = int(rng.integers(2, 4))
        name = "".join(rng.choice(_SYLLABLES, size=k)).capitalize()
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def _allocate(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    """Split ``n`` items into ``len(weights)`` non-empty groups, roughly in proportion."""
    counts = np.ones(len(weights), dtype=np.int64)
    counts += rng.multinomial(n - len(weights), weights / weights.sum())
    return counts


def build_catalog(n_products: int, days: int, rng: np.random.Generator) -> Catalog:
    """Draw the catalog; see the module docstring for the planted structure."""
    n_cat = min(len(VOCAB), max(2, n_products // 3))
    # With few products keep the heaviest categories so every category has several products.
    cats = np.sort(np.argsort([-v[2] for v in VOCAB], kind="stable")[:n_cat])
    base = np.array([VOCAB[k][2] for k in cats])
    per_cat = _allocate(rng, n_products, np.sqrt(base) * rng.lognormal(0, 0.3, n_cat))
    category = np.repeat(cats, per_cat).astype(np.int32)
    n = n_products
    # Types: a category-specific subset of modifiers, about 40 products per type.
    product_type = np.empty(n, dtype=np.int32)
    type_price = np.exp(rng.normal(0, 0.2, len(MODIFIERS)))
    start = np.concatenate([[0], np.cumsum(per_cat)])
    for j, cnt in enumerate(per_cat):
        k = int(np.clip(round(cnt / 40), 1, len(MODIFIERS)))
        mods = rng.choice(len(MODIFIERS), size=k, replace=False)
        product_type[start[j]:start[j + 1]] = mods[rng.choice(k, size=cnt,
                                                              p=rng.dirichlet(np.full(k, 2.0)))]
    # Brands per department; a private label across the store; a premium tier.
    dept = np.array([DEPARTMENTS.index(VOCAB[k][0]) for k in category])
    tier = rng.choice(3, size=n, p=[0.2, 0.65, 0.15]).astype(np.int8)
    brand = np.full(n, PRIVATE_LABEL, dtype=object)
    taken = {PRIVATE_LABEL}
    for d in np.unique(dept):
        rows = np.flatnonzero((dept == d) & (tier > 0))
        names = np.array(_brands(rng, int(np.clip(len(rows) // 25, 2, 300)), taken), dtype=object)
        share = np.arange(1.0, len(names) + 1) ** -0.8  # a few big brands, a long tail
        brand[rows] = names[rng.choice(len(names), size=len(rows), p=share / share.sum())]
    median = np.array([VOCAB[k][3] for k in category])
    rel = np.exp(rng.normal(0, 0.35, n)) * TIER_PRICE[tier] * type_price[product_type]
    price = np.maximum(np.round(median * rel, 1) - 0.01, 0.29)
    # Power-law popularity within each category, at random ranks; the top one is evergreen.
    rank = np.concatenate([rng.permutation(c) for c in per_cat])
    popularity = (rank + 1.0) ** -POPULARITY_EXPONENT
    u = rng.random(n)
    launch = np.zeros(n, dtype=np.int32)
    new = (u < 0.15) & (rank > 0)
    launch[new] = rng.integers(1, days, new.sum())
    if days >= 56:  # a batch of launches inside the last four weeks (cold products)
        recent = (u >= 0.15) & (u < 0.18) & (rank > 0)
        launch[recent] = rng.integers(days - 28, days - 7, recent.sum())
        new |= recent
    popularity[new] *= 2.0  # novelty: launches are promoted
    end = np.full(n, days, dtype=np.int32)
    gone = (u >= 0.18) & (u < 0.21) & (rank > 0)
    end[gone] = rng.integers(max(1, days // 4), days, gone.sum())
    # Shuffle so product ids say nothing about the category.
    mix = rng.permutation(n)
    category, product_type, brand, tier, price, rel, popularity, launch, end = (
        a[mix] for a in (category, product_type, brand, tier, price, rel, popularity, launch, end))
    frame = _text(rng, category, product_type, brand, tier, price, end < days)
    return Catalog(category, product_type, brand, tier, price, rel, popularity, launch, end, frame)


def _text(rng: np.random.Generator, category: np.ndarray, product_type: np.ndarray,
          brand: np.ndarray, tier: np.ndarray, price: np.ndarray,
          discontinued: np.ndarray) -> pd.DataFrame:
    """Titles, descriptions, category paths and attributes (one Python pass; n <= ~1e5)."""
    n = len(category)
    words = np.argsort(rng.random((n, 5)), axis=1)[:, :3]  # three distinct category words
    sizes = rng.choice([4, 6, 8, 12, 16, 24, 32, 48], size=n)
    titles, descs, paths, attrs = [], [], [], []
    for i in range(n):
        dept, cat, _, _, _, vocab = VOCAB[category[i]]
        mod = MODIFIERS[product_type[i]]
        w0, w1, w2 = (vocab[j] for j in words[i])
        unit = _UNITS[dept]
        titles.append(f"{brand[i]} {mod.title()} {w0.title()} {sizes[i]} {unit}")
        descs.append(f"{mod} {w0} {w1} {w2} from {brand[i]}, {cat.lower()} in {dept.lower()}")
        paths.append(CATEGORY_SEP.join((dept, cat, f"{mod.upper()} {cat}")))
        attrs.append(f"size={sizes[i]} {unit}; tier={TIERS[tier[i]]}")
    return pd.DataFrame({
        "title": pd.array(titles, dtype="str"), "description": pd.array(descs, dtype="str"),
        "category": pd.array(paths, dtype="str"), "brand": pd.array(brand, dtype="str"),
        "price": price.astype(np.float64), "available": ~discontinued,
        "attributes": pd.array(attrs, dtype="str"),
    })


__all__ = ["Catalog", "build_catalog", "VOCAB", "MODIFIERS", "DEPARTMENTS", "SEASON_PEAK",
           "CATEGORY_INDEX"]
