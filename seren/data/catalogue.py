"""The synthetic world's catalogue: top categories with item kinds, price bands and subcategories
with theme words, title adjectives, and the appeal levels an item text states in words. Pure
data, kept apart from the generator (`seren.data.synthetic`) that draws items and users from it."""

from __future__ import annotations

import numpy as np

# top -> (item kinds, price band, {subcategory: theme words})
CATALOGUE: dict[str, tuple[list[str], tuple[float, float], dict[str, list[str]]]] = {
    "Books": (
        ["novel", "anthology", "book", "collection"],
        (8.0, 40.0),
        {
            "Sci-Fi": ["starships", "alien worlds", "time travel", "robots", "space colonies"],
            "Poetry": ["verse", "sonnets", "haiku", "lyric imagery", "rhyme"],
            "Mystery": ["detectives", "clues", "whodunits", "crime scenes", "alibis"],
            "History": ["empires", "revolutions", "ancient Rome", "world wars", "dynasties"],
            "Fantasy": ["dragons", "wizards", "quests", "enchanted forests", "lost kingdoms"],
            "Romance": ["love letters", "courtship", "heartbreak", "weddings", "second chances"],
            "Biography": ["statesmen", "inventors", "memoirs", "explorers", "famous lives"],
            "Philosophy": ["ethics", "stoicism", "metaphysics", "logic", "existentialism"],
        },
    ),
    "Music": (
        ["album", "record", "playlist", "box set"],
        (5.0, 30.0),
        {
            "Jazz": ["saxophone", "improvisation", "bebop", "swing", "big bands"],
            "Classical": ["symphonies", "string quartets", "piano sonatas", "opera arias", "baroque"],
            "Rock": ["electric guitars", "power chords", "stadium anthems", "garage bands", "riffs"],
            "Hip-Hop": ["beats", "rhymes", "turntables", "freestyle", "samples"],
            "Electronic": ["synthesizers", "techno", "ambient pads", "drum machines", "house music"],
            "Folk": ["acoustic guitar", "ballads", "banjo", "storytelling songs", "harmonies"],
            "Blues": ["slide guitar", "twelve-bar", "harmonica", "the delta", "soul"],
            "Country": ["honky-tonk", "fiddles", "pickup trucks", "the heartland", "steel guitar"],
        },
    ),
    "Cooking": (
        ["cookbook", "recipe kit", "cooking class", "spice set"],
        (10.0, 60.0),
        {
            "Baking": ["sourdough", "pastries", "layer cakes", "croissants", "bread"],
            "Vegan": ["plant proteins", "tofu", "lentils", "vegetables", "dairy-free meals"],
            "Italian": ["pasta", "risotto", "pizza", "tomatoes", "olive oil"],
            "Japanese": ["sushi", "ramen", "miso", "tempura", "umami"],
            "Grilling": ["barbecue", "smoked meats", "charcoal", "marinades", "skewers"],
            "Desserts": ["chocolate", "ice cream", "tarts", "caramel", "meringue"],
            "Mexican": ["tacos", "salsa", "tortillas", "chiles", "mole"],
            "Indian": ["curries", "spices", "dal", "tandoori", "chutneys"],
        },
    ),
    "Outdoors": (
        ["guide", "gear kit", "trail map", "field book"],
        (15.0, 200.0),
        {
            "Hiking": ["trails", "summits", "backpacks", "switchbacks", "trekking poles"],
            "Camping": ["tents", "campfires", "sleeping bags", "stargazing", "lanterns"],
            "Climbing": ["bouldering", "ropes", "crags", "carabiners", "belaying"],
            "Fishing": ["rods", "lures", "rivers", "fly casting", "tackle"],
            "Birdwatching": ["binoculars", "songbirds", "migration", "raptors", "field marks"],
            "Kayaking": ["paddles", "rapids", "lakes", "sea kayaks", "portages"],
            "Gardening": ["seedlings", "compost", "perennials", "raised beds", "pruning"],
            "Cycling": ["mountain bikes", "gravel roads", "saddles", "hill climbs", "touring"],
        },
    ),
    "Tech": (
        ["gadget", "course", "handbook", "device"],
        (20.0, 500.0),
        {
            "Programming": ["python", "algorithms", "compilers", "debugging", "open source"],
            "AI": ["neural networks", "machine learning", "chatbots", "robotics", "data"],
            "Gadgets": ["smartwatches", "headphones", "drones", "chargers", "wearables"],
            "Security": ["encryption", "passwords", "hacking", "firewalls", "privacy"],
            "Gaming PCs": ["graphics cards", "overclocking", "keyboards", "monitors", "cooling"],
            "Smart Home": ["thermostats", "voice assistants", "smart lights", "sensors", "automation"],
            "Camera Gear": ["lenses", "tripods", "mirrorless cameras", "flashes", "filters"],
            "Space Tech": ["rockets", "satellites", "telescopes", "mars rovers", "orbits"],
        },
    ),
    "Travel": (
        ["travel guide", "tour package", "itinerary", "phrasebook"],
        (15.0, 900.0),
        {
            "Beaches": ["islands", "snorkeling", "coral reefs", "sunsets", "surf"],
            "Cities": ["museums", "cafes", "skylines", "nightlife", "metro rides"],
            "Mountains": ["alpine villages", "glaciers", "cable cars", "chalets", "ski slopes"],
            "Road Trips": ["highways", "motels", "scenic routes", "diners", "convertibles"],
            "Backpacking": ["hostels", "rail passes", "budget travel", "street food", "border crossings"],
            "Cruises": ["ocean liners", "ports of call", "sun decks", "buffets", "fjords"],
            "Safari": ["savanna", "lions", "jeeps", "wildlife", "national parks"],
            "Culture Tours": ["temples", "festivals", "heritage sites", "crafts", "local traditions"],
        },
    ),
    "Film": (
        ["film", "movie", "box set", "series"],
        (3.0, 25.0),
        {
            "Drama": ["family conflict", "courtrooms", "grief", "ambition", "redemption"],
            "Comedy": ["slapstick", "satire", "sitcoms", "punchlines", "misadventures"],
            "Horror": ["haunted houses", "monsters", "zombies", "jump scares", "curses"],
            "Westerns": ["cowboys", "outlaws", "frontier towns", "duels", "deserts"],
            "Animation": ["cartoons", "talking animals", "hand-drawn worlds", "puppets", "anime"],
            "Thrillers": ["conspiracies", "car chases", "spies", "heists", "double agents"],
            "Musicals": ["show tunes", "dance numbers", "broadway", "choreography", "stage lights"],
            "Noir": ["femme fatales", "rainy streets", "private eyes", "shadows", "corruption"],
        },
    ),
    "Games": (
        ["game", "board game", "puzzle box", "expansion"],
        (10.0, 80.0),
        {
            "Strategy": ["armies", "empire building", "tactics", "resources", "conquest"],
            "Puzzles": ["riddles", "logic grids", "jigsaws", "brain teasers", "mazes"],
            "RPG": ["character classes", "dungeons", "loot", "quests", "party members"],
            "Racing": ["race cars", "tracks", "drifting", "pit stops", "speed"],
            "Tabletop": ["dice", "meeples", "card drafting", "tile laying", "family nights"],
            "Sports Games": ["football", "basketball", "leagues", "stadiums", "tournaments"],
            "Simulation": ["city building", "farming", "flight sims", "trains", "life sims"],
            "Party Games": ["trivia", "charades", "bluffing", "drawing", "teams"],
        },
    ),
    "Art": (
        ["art book", "print", "workshop", "supply kit"],
        (10.0, 150.0),
        {
            "Painting": ["watercolors", "oil paints", "canvases", "brushstrokes", "landscapes"],
            "Sculpture": ["marble", "clay", "bronze casting", "chisels", "statues"],
            "Photography": ["portraits", "black and white", "street photos", "darkrooms", "exposure"],
            "Calligraphy": ["ink", "brush pens", "lettering", "scripts", "parchment"],
            "Ceramics": ["pottery wheels", "glazes", "kilns", "stoneware", "bowls"],
            "Illustration": ["sketchbooks", "comics", "character design", "ink drawings", "storyboards"],
            "Architecture": ["skyscrapers", "cathedrals", "blueprints", "modernism", "bridges"],
            "Textile Art": ["weaving", "quilts", "embroidery", "looms", "dyes"],
        },
    ),
    "Fitness": (
        ["program", "class pass", "workout plan", "equipment set"],
        (10.0, 250.0),
        {
            "Yoga": ["poses", "breathing", "mats", "flexibility", "meditation"],
            "Running": ["marathons", "sneakers", "intervals", "trail runs", "pacing"],
            "Weightlifting": ["barbells", "squats", "deadlifts", "strength", "gyms"],
            "Swimming": ["laps", "pools", "freestyle strokes", "goggles", "open water"],
            "Martial Arts": ["karate", "judo", "sparring", "belts", "kicks"],
            "Pilates": ["core strength", "reformers", "posture", "balance", "control"],
            "Dance Fitness": ["zumba", "rhythm", "cardio", "choreography", "music"],
            "Nutrition": ["protein", "meal prep", "vitamins", "hydration", "macros"],
        },
    ),
    "Science": (
        ["book", "course", "kit", "lecture series"],
        (10.0, 120.0),
        {
            "Astronomy": ["galaxies", "planets", "black holes", "nebulae", "telescopes"],
            "Biology": ["cells", "evolution", "genetics", "ecosystems", "microbes"],
            "Chemistry": ["molecules", "reactions", "lab experiments", "elements", "catalysts"],
            "Physics": ["quantum mechanics", "relativity", "particles", "energy", "magnets"],
            "Geology": ["volcanoes", "rocks", "earthquakes", "fossils", "minerals"],
            "Mathematics": ["prime numbers", "geometry", "proofs", "equations", "infinity"],
            "Oceanography": ["tides", "the deep sea", "whales", "currents", "coral"],
            "Neuroscience": ["brains", "memory", "neurons", "perception", "sleep"],
        },
    ),
    "Fashion": (
        ["collection", "accessory", "lookbook", "garment"],
        (15.0, 300.0),
        {
            "Streetwear": ["sneakers", "hoodies", "graphic tees", "caps", "skate style"],
            "Vintage": ["thrift finds", "retro dresses", "denim", "antiques", "the seventies"],
            "Formal": ["suits", "evening gowns", "ties", "tailoring", "cufflinks"],
            "Jewelry": ["necklaces", "rings", "gemstones", "silver", "pearls"],
            "Outerwear": ["rain jackets", "boots", "fleece", "layers", "waterproofing"],
            "Minimalist": ["neutral tones", "capsule wardrobes", "linen", "clean lines", "essentials"],
            "Sustainable": ["organic cotton", "recycled fabrics", "upcycling", "slow fashion", "ethical brands"],
            "Accessories": ["handbags", "scarves", "sunglasses", "belts", "watches"],
        },
    ),
}
MAX_TOP = len(CATALOGUE)
MAX_SUB = min(len(v[2]) for v in CATALOGUE.values())

ADJECTIVES = [
    "Midnight", "Golden", "Silent", "Crimson", "Hidden", "Endless", "Little", "Wild", "Quiet", "Bright",
    "Northern", "Secret", "Broken", "Electric", "Gentle", "Restless", "Velvet", "Winter", "Summer", "Lost",
    "Distant", "Burning", "Silver", "Hollow", "Brave", "Curious", "Ancient", "Modern", "Lucky", "Paper",
]  # fmt: skip

APPEAL_LEVELS = ("low", "mid", "high")
APPEAL_PROBS = (0.3, 0.45, 0.25)
APPEAL_MULT = np.array([0.3, 0.65, 1.0])  # scales engagement probability
APPEAL_PHRASES = {
    "high": ["A widely acclaimed", "A beloved, highly rated", "An outstanding, much praised"],
    "mid": ["A middling", "A decent but unremarkable", "An average"],
    "low": ["A forgettable", "A poorly reviewed", "A dull, disappointing"],
}
