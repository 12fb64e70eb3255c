"""Readable product names, brands and descriptions for the simulated catalogue.

Drawn from a generator seeded by the product's index alone, so the names never change the
draws the simulator makes for prices, demand and shoppers (its statistics stay as they were),
and the same shop gets the same names on every run.

>>> describe(0, "dairy") == describe(0, "dairy")
True
>>> name, brand, text = describe(3, "coffee")
>>> brand in name and any(noun in name for noun in NOUNS["coffee"])
True
>>> describe(7, "category-31")[0] != ""
True
"""

from __future__ import annotations

import random

NOUNS: dict[str, tuple[str, ...]] = {
    "produce": (
        "Gala Apples",
        "Baby Spinach",
        "Vine Tomatoes",
        "Avocados",
        "Blueberries",
        "Sweet Potatoes",
    ),
    "bakery": (
        "Sourdough Loaf",
        "Butter Croissants",
        "Rye Bread",
        "Cinnamon Rolls",
        "Bagels",
        "Baguette",
    ),
    "dairy": (
        "Greek Yogurt",
        "Whole Milk",
        "Aged Cheddar",
        "Salted Butter",
        "Mozzarella",
        "Cream Cheese",
    ),
    "meat": (
        "Chicken Breast",
        "Ground Beef",
        "Pork Sausages",
        "Ribeye Steak",
        "Smoked Bacon",
        "Lamb Chops",
    ),
    "seafood": (
        "Atlantic Salmon",
        "Tiger Prawns",
        "Cod Fillets",
        "Tuna Steaks",
        "Mussels",
        "Smoked Trout",
    ),
    "frozen": (
        "Pepperoni Pizza",
        "Garden Peas",
        "Vanilla Ice Cream",
        "Fish Fingers",
        "Berry Mix",
        "Dumplings",
    ),
    "pantry": (
        "Basmati Rice",
        "Penne Pasta",
        "Olive Oil",
        "Tomato Passata",
        "Chickpeas",
        "Peanut Butter",
    ),
    "snacks": (
        "Sea Salt Crisps",
        "Dark Chocolate",
        "Salted Pretzels",
        "Trail Mix",
        "Rice Crackers",
        "Granola Bars",
    ),
    "beverages": ("Sparkling Water", "Orange Juice", "Cola", "Iced Tea", "Lemonade", "Oat Drink"),
    "coffee": (
        "Espresso Beans",
        "Ground Coffee",
        "Cold Brew",
        "Coffee Capsules",
        "Decaf Blend",
        "Instant Coffee",
    ),
    "wine": ("Pinot Noir", "Sauvignon Blanc", "Prosecco", "Rioja", "Chardonnay", "Rosé"),
    "household": (
        "Paper Towels",
        "Trash Bags",
        "Light Bulbs",
        "Batteries",
        "Candles",
        "Aluminium Foil",
    ),
    "cleaning": (
        "Dish Soap",
        "Laundry Detergent",
        "Glass Cleaner",
        "Sponges",
        "Surface Spray",
        "Fabric Softener",
    ),
    "personal-care": ("Shampoo", "Toothpaste", "Body Wash", "Deodorant", "Hand Cream", "Face Wash"),
    "baby": (
        "Diapers",
        "Baby Wipes",
        "Infant Formula",
        "Baby Lotion",
        "Teething Rings",
        "Sippy Cup",
    ),
    "pets": ("Dog Food", "Cat Litter", "Cat Treats", "Chew Toy", "Bird Seed", "Pet Shampoo"),
    "garden": (
        "Potting Soil",
        "Garden Hose",
        "Tomato Seeds",
        "Pruning Shears",
        "Plant Food",
        "Watering Can",
    ),
    "kitchen": (
        "Chef Knife",
        "Frying Pan",
        "Cutting Board",
        "Mixing Bowls",
        "Kettle",
        "Measuring Cups",
    ),
    "electronics": (
        "Wireless Earbuds",
        "USB-C Cable",
        "Phone Charger",
        "Bluetooth Speaker",
        "Power Bank",
        "Smart Plug",
    ),
    "toys": ("Building Blocks", "Jigsaw Puzzle", "Plush Bear", "Toy Car", "Board Game", "Kite"),
    "books": (
        "Cookbook",
        "Mystery Novel",
        "Travel Guide",
        "Picture Book",
        "Atlas",
        "Poetry Collection",
    ),
    "sports": (
        "Yoga Mat",
        "Running Socks",
        "Water Bottle",
        "Tennis Balls",
        "Dumbbells",
        "Jump Rope",
    ),
    "stationery": (
        "Notebook",
        "Gel Pens",
        "Sticky Notes",
        "Highlighters",
        "Desk Planner",
        "Pencil Case",
    ),
    "health": (
        "Vitamin C",
        "Pain Relief Tablets",
        "Plasters",
        "Allergy Relief",
        "Multivitamins",
        "Thermometer",
    ),
}
GENERIC_NOUNS = ("Essentials Pack", "Value Box", "Starter Kit", "Refill", "Bundle", "Sampler")
BRANDS = (
    "Northfield",
    "Acorn & Oak",
    "Bluewater",
    "Harvest Moon",
    "Kestrel",
    "Little Lark",
    "Meadowbrook",
    "Pioneer",
    "Redwood",
    "Silverline",
    "Sunnyside",
    "Tidewell",
    "Urban Pantry",
    "Valley Farm",
    "Wildroot",
    "Zephyr",
)
STYLES = (
    "Organic",
    "Classic",
    "Premium",
    "Family Size",
    "Light",
    "Extra Large",
    "Original",
    "Fresh",
    "Everyday",
    "Deluxe",
    "Mini",
    "Eco",
)
PRAISE = (
    "a customer favourite",
    "made for every day",
    "great value for families",
    "sourced from trusted suppliers",
    "new this season",
    "rated highly by our shoppers",
)


def describe(index: int, category: str) -> tuple[str, str, str]:
    """``(name, brand, description)`` of product ``index`` in ``category`` (deterministic)."""
    rng = random.Random(index)
    noun = rng.choice(NOUNS.get(category, GENERIC_NOUNS))
    brand, style = rng.choice(BRANDS), rng.choice(STYLES)
    name = f"{brand} {style} {noun}"
    text = f"{style} {noun.lower()} by {brand}, from our {category} aisle: {rng.choice(PRAISE)}."
    return name, brand, text
