"""Seeded synthetic catalogue + users + feedback-loop behaviour + ground-truth serendipity labels.

The generator is built so that later stages can learn real signal from *text*:

* every item text names its top category, subcategory and theme words, and states its appeal
  in words ("a widely acclaimed ...", "a middling ...", "a forgettable ...");
* each user has visible interests (subcategories that dominate the history) and hidden interests:
  *sibling* subcategories (same top category) of a visible one. An item from an unseen
  subcategory of a top category the user likes is therefore a likely pleasant surprise, one from
  an unrelated top category is not -- serendipity is predictable from a profile;
* exposure follows a feedback loop: the recommender shows mostly subcategories of past positives
  and explores less as the history grows, so exposure concentrates over time;
* labels are ground truth: an exposure outside the user's history at that moment is unexpected,
  and serendipitous iff the user engaged with it.

Everything is vectorised over users (one numpy step per exposure position), so 1M interactions
take seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seren.data.dataset import Dataset
from seren.errors import ConfigError

GENERATOR_VERSION = 1
START = pd.Timestamp("2024-01-01", tz="UTC")

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
POSITIVE_EVENT_NAMES = np.array(["click", "like", "purchase"])


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the generator; every field lands in the dataset manifest for reproducibility."""

    n_users: int = 500
    n_items: int = 800
    n_top: int = 8
    n_sub: int = 5
    days: int = 60
    events_per_user: int = 60
    seed: int = 0
    shift: float = 0.0  # >0 moves the population: more curious users, interests skewed to later tops
    explore_start: float = 0.5  # exploration share of a brand-new user ...
    explore_end: float = 0.08  # ... decaying towards this as positives accumulate
    explore_decay: float = 10.0  # positives after which ~63% of the decay has happened
    sibling_explore: float = 0.7  # share of exploration that stays inside a liked top category
    rating_frac: float = 0.15  # share of exposures that also carry an explicit rating
    warmup_frac: float = 0.2  # first part of each history builds context and is not labelled
    expected_label_ratio: float = 0.3  # "relevant but expected" negatives per unexpected label, per user
    negative_label_frac: float = 0.15  # share of unexpected-but-ignored exposures kept (negative downsampling)
    zipf_a: float = 1.0

    def __post_init__(self) -> None:
        checks = [
            (self.n_users >= 1, "n_users must be >= 1"),
            (1 <= self.n_top <= MAX_TOP, f"n_top must be in 1..{MAX_TOP}"),
            (1 <= self.n_sub <= MAX_SUB, f"n_sub must be in 1..{MAX_SUB}"),
            (self.n_items >= self.n_top * self.n_sub, f"n_items must be >= n_top*n_sub ({self.n_top * self.n_sub})"),
            (self.days >= 1, "days must be >= 1"),
            (self.events_per_user >= 2, "events_per_user must be >= 2"),
            (self.shift >= 0, "shift must be >= 0"),
            (0 <= self.explore_end <= self.explore_start <= 1, "need 0 <= explore_end <= explore_start <= 1"),
            (0 <= self.sibling_explore <= 1, "sibling_explore must be in [0, 1]"),
            (0 <= self.rating_frac <= 1, "rating_frac must be in [0, 1]"),
            (0 <= self.warmup_frac < 1, "warmup_frac must be in [0, 1)"),
            (self.expected_label_ratio >= 0, "expected_label_ratio must be >= 0"),
            (0 <= self.negative_label_frac <= 1, "negative_label_frac must be in [0, 1]"),
            (self.seed >= 0, "seed must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"invalid synthetic config: {msg}", "pass values in the allowed range")


def catalogue_tables(cfg: SyntheticConfig) -> tuple[list[str], list[str], np.ndarray]:
    """(top names, subcategory paths "Top/Sub", sub -> top index) for this config."""
    tops = list(CATALOGUE)[: cfg.n_top]
    subs = [f"{t}/{s}" for t in tops for s in list(CATALOGUE[t][2])[: cfg.n_sub]]
    return tops, subs, np.repeat(np.arange(cfg.n_top), cfg.n_sub)


def _make_items(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    tops, subs, _ = catalogue_tables(cfg)
    n_subs = len(subs)
    # every subcategory gets at least one item; the rest are spread with uneven sizes
    extra = rng.choice(n_subs, size=cfg.n_items - n_subs, p=rng.dirichlet(np.full(n_subs, 4.0)))
    sub_of = np.sort(np.concatenate([np.arange(n_subs), extra]))
    appeal = rng.choice(3, size=cfg.n_items, p=APPEAL_PROBS)
    latent_pop = (1.0 / (rng.permutation(cfg.n_items) + 1.0) ** cfg.zipf_a) * (0.5 + APPEAL_MULT[appeal])
    adj = rng.integers(len(ADJECTIVES), size=cfg.n_items)
    words = np.argsort(rng.random((cfg.n_items, 5)), axis=1)[:, :4]  # 4 distinct theme words
    kind_i = rng.integers(4, size=cfg.n_items)
    phrase_i = rng.integers(3, size=cfg.n_items)
    price_u = rng.random(cfg.n_items)
    width = max(5, len(str(cfg.n_items)))
    rows = []
    for i in range(cfg.n_items):
        top, sub = subs[sub_of[i]].split("/", 1)
        kinds, (lo, hi), themes = CATALOGUE[top]
        theme = themes[sub]
        w = [theme[j] for j in words[i]]
        level = APPEAL_LEVELS[appeal[i]]
        title = f"{ADJECTIVES[adj[i]]} {w[0].title()}"
        text = (
            f"{APPEAL_PHRASES[level][phrase_i[i]]} {sub} {kinds[kind_i[i]]} from {top}: "
            f"{title} is about {w[0]} and {w[1]}. "
            f"For anyone into {sub.lower()}, {w[2]} and {w[3]}."
        )
        price = round(lo + (hi - lo) * price_u[i] * (0.6 + 0.4 * appeal[i] / 2), 2)
        rows.append((f"i{i:0{width}d}", title, text, subs[sub_of[i]], price, level))
    items = pd.DataFrame(rows, columns=["item_id", "title", "text", "category", "price", "appeal"])
    return items, sub_of, latent_pop


def _make_users(
    cfg: SyntheticConfig, rng: np.random.Generator, params: WorldParams | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visible/hidden interest masks (U x S) and curiosity (U,).

    With the default `WorldParams` the draws are exactly the generator's historical ones (same seed,
    same frames); other values draw extra numbers afterwards, so only the changed part differs."""
    params = params or WorldParams()
    U, n_top, n_sub = cfg.n_users, cfg.n_top, cfg.n_sub
    S = n_top * n_sub
    ramp = np.linspace(-1.0, 1.0, n_top) if n_top > 1 else np.zeros(1)
    top_w = np.exp(cfg.shift * 1.5 * ramp)
    top_w /= top_w.sum()
    vis = np.zeros((U, S), dtype=bool)
    hid = np.zeros((U, S), dtype=bool)
    rows = np.arange(U)
    n_vis = np.minimum(rng.integers(2, 4, size=U), S)
    # first visible interest picks the anchor top category (shift skews which tops are popular)
    anchor_top = rng.choice(n_top, size=U, p=top_w)
    first = anchor_top * n_sub + rng.integers(n_sub, size=U)
    vis[rows, first] = True
    for k in range(1, 3):
        todo = n_vis > k
        # further visible interests: some from the same top, the rest from any top; redraw collisions
        for _ in range(50):
            if not todo.any():
                break
            same = rng.random(U) < 0.35
            top = np.where(same, anchor_top, rng.choice(n_top, size=U, p=top_w))
            cand = top * n_sub + rng.integers(n_sub, size=U)
            ok = todo & ~vis[rows, cand]
            vis[rows[ok], cand[ok]] = True
            todo &= ~ok
    # hidden interests: 1-2 unseen siblings of visible interests
    n_hid = rng.integers(1, 3, size=U)
    vis_top = vis.reshape(U, n_top, n_sub).any(axis=2)  # U x n_top
    sib = np.repeat(vis_top, n_sub, axis=1) & ~vis  # U x S candidate siblings
    score = np.where(sib, rng.random((U, S)), -1.0)
    order = np.argsort(-score, axis=1)
    for k in range(min(2, S)):
        pick = order[:, k]
        ok = (n_hid > k) & sib[rows, pick]
        hid[rows[ok], pick[ok]] = True
    if params.hidden_sibling_share < 1.0:
        # move a share of the hidden interests to top categories the user shows no interest in
        far = ~np.repeat(vis_top, n_sub, axis=1)
        move = hid & (rng.random((U, S)) >= params.hidden_sibling_share)
        far_score = np.where(far, rng.random((U, S)), -1.0)
        for u in np.flatnonzero(move.any(axis=1) & far.any(axis=1)):
            n_move = int(move[u].sum())
            order_u = np.argsort(-far_score[u])[: min(n_move, int(far[u].sum()))]
            moved = np.flatnonzero(move[u])[: len(order_u)]
            hid[u, moved] = False
            hid[u, order_u] = True
    if params.curiosity_mean is None:
        curiosity = rng.beta(2.0 + 4.0 * cfg.shift, 3.0, size=U)
    else:
        m = params.curiosity_mean
        curiosity = rng.beta(5.0 * m, 5.0 * (1.0 - m), size=U)
    return vis, hid, curiosity


@dataclass(frozen=True)
class WorldParams:
    """World knobs beyond the generator's config (the simulation sweeps them).

    hidden_sibling_share: share of hidden interests that are siblings (same top category) of a
    visible one; the rest sit in top categories the user shows no interest in. curiosity_mean:
    mean of the population's curiosity (Beta(5m, 5(1-m))); None = the generator's Beta(2+4*shift, 3).
    """

    hidden_sibling_share: float = 1.0
    curiosity_mean: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.hidden_sibling_share <= 1.0:
            raise ConfigError("hidden_sibling_share must be in [0, 1]", "pass e.g. 1.0, 0.5 or 0.0")
        if self.curiosity_mean is not None and not 0.0 < self.curiosity_mean < 1.0:
            raise ConfigError("curiosity_mean must be in (0, 1)", "pass e.g. 0.4")

    def is_default(self) -> bool:
        return self == WorldParams()


@dataclass
class World:
    """The latent world: catalogue, users' visible and hidden interests, curiosity, item appeal, and
    the one response model (`engage_prob` / `respond`) that both the log generator and the
    closed-loop simulator draw engagement from."""

    cfg: SyntheticConfig
    params: WorldParams
    items: pd.DataFrame  # item_id, title, text, category, price, appeal (no observed popularity)
    sub_of: np.ndarray  # item -> subcategory index
    latent_pop: np.ndarray  # item -> latent popularity (exposure weight inside a subcategory)
    appeal_mult: np.ndarray  # item -> engagement multiplier of its appeal level
    vis: np.ndarray  # U x S visible interests
    hid: np.ndarray  # U x S hidden interests
    curiosity: np.ndarray  # U
    tops: list[str]
    subs: list[str]
    top_of_sub: np.ndarray

    @classmethod
    def build(cls, cfg: SyntheticConfig, rng: np.random.Generator, params: WorldParams | None = None) -> World:
        """Draw the world from `rng` (the generator's first draws, in its order)."""
        params = params or WorldParams()
        items, sub_of, latent_pop = _make_items(cfg, rng)
        tops, subs, top_of_sub = catalogue_tables(cfg)
        vis, hid, curiosity = _make_users(cfg, rng, params)
        level = items["appeal"].map({k: i for i, k in enumerate(APPEAL_LEVELS)}).to_numpy()
        return cls(
            cfg, params, items, sub_of, latent_pop, APPEAL_MULT[level], vis, hid, curiosity, tops, subs, top_of_sub
        )

    @classmethod
    def from_seed(cls, cfg: SyntheticConfig, params: WorldParams | None = None) -> World:
        return cls.build(cfg, np.random.default_rng(cfg.seed), params)

    @property
    def n_users(self) -> int:
        return int(self.vis.shape[0])

    @property
    def likes_top(self) -> np.ndarray:
        """U x S: the subcategory's top category holds a visible interest of the user."""
        n_sub = self.cfg.n_sub
        return np.repeat(self.vis.reshape(self.n_users, self.cfg.n_top, n_sub).any(axis=2), n_sub, axis=1)

    def engage_prob(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(positive engagement) of `users` exposed to `items` (broadcast shapes): visible interests
        engage most, hidden ones in proportion to curiosity, siblings of liked tops a little, the
        rest rarely; everything scaled by the item's appeal."""
        users, items = np.asarray(users), np.asarray(items)
        sub = self.sub_of[items]
        am = self.appeal_mult[items]
        v, h = self.vis[users, sub], self.hid[users, sub]
        lt = self.vis.reshape(self.n_users, self.cfg.n_top, self.cfg.n_sub)[users, self.top_of_sub[sub]].any(axis=-1)
        cur = self.curiosity[users]
        return np.where(
            v,
            0.15 + 0.6 * am,
            np.where(h, am * (0.35 + 0.75 * cur), np.where(lt, 0.02 + 0.08 * am, 0.01 + 0.05 * am)),
        )

    def respond(self, users: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw engagement (bool, shape of the broadcast) for users exposed to items: one uniform per
        exposure, positive when below `engage_prob`."""
        p = self.engage_prob(users, items)
        return rng.random(p.shape) < p


def generate(
    cfg: SyntheticConfig | None = None,
    on_step: Callable[[int, int], None] | None = None,
    world: WorldParams | None = None,
) -> Dataset:
    """Build a validated Dataset (interactions, items, users, labels) for `cfg`; same seed, same frames.

    `on_step(done, total)` is called after each simulated exposure step (for progress bars);
    `world` changes the latent world (see `WorldParams`; default = the historical generator).
    """
    return simulate(cfg or SyntheticConfig(), on_step, world).validate()


def simulate(
    cfg: SyntheticConfig, on_step: Callable[[int, int], None] | None = None, world: WorldParams | None = None
) -> Dataset:
    """The generator without the final schema pass (benchmarks time the two separately)."""
    return generate_logs(cfg, on_step, world)[0]


def generate_logs(
    cfg: SyntheticConfig, on_step: Callable[[int, int], None] | None = None, world: WorldParams | None = None
) -> tuple[Dataset, World]:
    """The behaviour log (unvalidated Dataset) and the latent `World` that produced it."""
    rng = np.random.default_rng(cfg.seed)
    wd = World.build(cfg, rng, world)
    items, sub_of, latent_pop = wd.items.copy(), wd.sub_of, wd.latent_pop
    subs, top_of_sub = wd.subs, wd.top_of_sub
    U, S, n_sub = cfg.n_users, len(subs), cfg.n_sub
    vis, hid, curiosity = wd.vis, wd.hid, wd.curiosity
    rows = np.arange(U)

    # item sampler within a subcategory: items are sorted by sub, so cumulative weights per sub
    # live in [sub, sub+1) of one global array and a single searchsorted draws for all users.
    cum = np.zeros(cfg.n_items)
    for s in range(S):  # S <= 96, cheap
        m = sub_of == s
        c = np.cumsum(latent_pop[m])
        cum[m] = s + c / c[-1]
    cum[-1] = S  # guard against float round-off at the end

    # history lengths vary around events_per_user
    epu = cfg.events_per_user
    T_u = np.clip(np.round(epu * rng.lognormal(0.0, 0.35, size=U)), max(2, epu // 3), 2.5 * epu).astype(np.int64)
    T = int(T_u.max())
    warm = np.floor(cfg.warmup_frac * T_u).astype(np.int64)

    counts = np.full((U, S), 0.05)
    counts[vis] += 1.0  # onboarding: the system knows declared interests a little
    # known interests: declared at onboarding (visible) plus every subcategory with a past positive
    hist = vis.copy()
    npos = np.zeros(U)
    item_m = np.zeros((U, T), dtype=np.int64)
    pos_m = np.zeros((U, T), dtype=bool)
    inhist_m = np.zeros((U, T), dtype=bool)
    explore_m = np.zeros((U, T), dtype=bool)
    w = counts**1.5  # exploitation weights, sharpened towards the strongest interests
    for t in range(T):
        p_explore = cfg.explore_end + (cfg.explore_start - cfg.explore_end) * np.exp(-npos / cfg.explore_decay)
        cw = np.cumsum(w, axis=1)
        r = rng.random(U) * cw[:, -1]
        sub_x = np.minimum((cw < r[:, None]).sum(axis=1), S - 1)
        explore = rng.random(U) < p_explore
        sibling = rng.random(U) < cfg.sibling_explore
        sub_sib = top_of_sub[sub_x] * n_sub + rng.integers(n_sub, size=U)
        sub_rand = rng.integers(S, size=U)
        sub = np.where(explore, np.where(sibling, sub_sib, sub_rand), sub_x)
        item = np.minimum(np.searchsorted(cum, sub + rng.random(U), side="right"), cfg.n_items - 1)
        sub = sub_of[item]
        active = t < T_u
        pos = wd.respond(rows, item, rng) & active  # the world's response model (shared with the simulator)
        item_m[:, t] = item
        pos_m[:, t] = pos
        inhist_m[:, t] = hist[rows, sub]
        explore_m[:, t] = explore
        counts[rows, sub] += pos
        w[rows, sub] = counts[rows, sub] ** 1.5
        hist[rows, sub] |= pos
        npos += pos
        if on_step is not None:
            on_step(t + 1, T)

    steps = np.arange(T)[None, :]
    active = steps < T_u[:, None]
    # timestamps: sessions of a few minutes scattered over `days`, strictly increasing per user
    horizon = cfg.days * 86400
    n_sess = (T + 7) // 8
    n_sess_u = (T_u + 7) // 8
    starts = horizon * (np.arange(n_sess)[None, :] + rng.random((U, n_sess))) / n_sess_u[:, None]
    gaps = rng.integers(20, 240, size=(U, n_sess, 8)).cumsum(axis=2).reshape(U, n_sess * 8)[:, :T]
    raw = np.repeat(starts.astype(np.int64), 8, axis=1)[:, :T] + gaps
    secs = np.maximum.accumulate(raw, axis=1) + steps  # strictly increasing

    n = int(active.sum())
    u_idx = np.broadcast_to(rows[:, None], (U, T))[active]
    it = item_m[active]
    pos = pos_m[active]
    inh = inhist_m[active]
    step = np.broadcast_to(steps, (U, T))[active]
    ts = START + pd.to_timedelta(secs[active], unit="s")
    lvl = items["appeal"].map({k: i for i, k in enumerate(APPEAL_LEVELS)}).to_numpy()[it]
    ev_choice = rng.random(n)
    p_purchase = 0.08 + 0.06 * lvl
    ev_pos = np.where(ev_choice < p_purchase, 2, np.where(ev_choice < p_purchase + 0.3, 1, 0))
    event = np.where(pos, POSITIVE_EVENT_NAMES[ev_pos], "skip").astype(object)
    rated = rng.random(n) < cfg.rating_frac
    rating = np.full(n, np.nan)
    r_pos = 4.0 + (rng.random(n) < 0.3 + 0.25 * lvl)
    r_neg = 1.0 + rng.integers(0, 3, size=n)
    rating[rated & pos] = r_pos[rated & pos]
    neg_rated = rated & ~pos
    rating[neg_rated] = r_neg[neg_rated]
    event[neg_rated] = "rating"  # consumed and disliked: an explicit low rating instead of a skip

    uw = max(5, len(str(U)))
    user_ids = np.array([f"u{i:0{uw}d}" for i in range(U)], dtype=object)
    item_ids = items["item_id"].to_numpy()
    interactions = pd.DataFrame(
        {"user_id": user_ids[u_idx], "item_id": item_ids[it], "event": event, "rating": rating, "timestamp": ts}
    )

    # ground-truth labels (after the warm-up part of each history)
    labelled = step >= warm[u_idx]
    unexpected_kept = labelled & ~inh & (pos | (rng.random(n) < cfg.negative_label_frac))
    # expected positives: a per-user quota proportional to that user's unexpected labels, drawn at
    # random, so long histories do not drown the serendipity signal in easy negatives
    quota = np.ceil(cfg.expected_label_ratio * np.bincount(u_idx[unexpected_kept], minlength=U))
    cand = np.flatnonzero(labelled & inh & pos)
    cand = cand[rng.permutation(len(cand))]
    rank = pd.Series(u_idx[cand]).groupby(u_idx[cand]).cumcount().to_numpy()
    expected_kept = np.zeros(n, dtype=bool)
    expected_kept[cand[rank < quota[u_idx[cand]]]] = True
    sel = unexpected_kept | expected_kept
    labels = pd.DataFrame(
        {
            "user_id": user_ids[u_idx[sel]],
            "item_id": item_ids[it[sel]],
            "serendipitous": (pos[sel] & ~inh[sel]).astype(np.int64),
            "relevant": pos[sel].astype(np.int64),
            "unexpected": (~inh[sel]).astype(np.int64),
            "timestamp": ts[sel],
            "source": "ground_truth",
        }
    )
    labels = labels.drop_duplicates(["user_id", "item_id"], keep="first").reset_index(drop=True)

    items["popularity"] = np.bincount(it, minlength=cfg.n_items).astype(float)
    sub_names = np.array(subs, dtype=object)

    def _join(mask: np.ndarray) -> list[str]:
        return [",".join(sub_names[m]) for m in mask]

    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "visible_interests": _join(vis),
            "hidden_interests": _join(hid),
            "curiosity": curiosity.round(4),
            "n_events": T_u,
        }
    )
    meta: dict[str, Any] = {
        "source": "synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "config": dataclasses.asdict(cfg),
        "categories": subs,
        "explore_share": float(explore_m[active].mean()),
    }
    if not wd.params.is_default():  # the historical manifest is unchanged for the default world
        meta["world"] = dataclasses.asdict(wd.params)
    # a catalogue too small for anything unexpected (e.g. one category) yields no labels
    ds = Dataset(interactions=interactions, items=items, users=users, labels=labels if len(labels) else None, meta=meta)
    return ds, wd
