"""Label sources and their merge: behaviour rules, human (dataset + Likert survey), teacher LLM.

The teacher is the project's OpenAIBackend against a real `transformers serve` (see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from seren.data import Dataset
from seren.errors import ConfigError, DataError, ServiceError
from seren.profiles import build_profiles
from seren.serengpt.labeling import (
    LABEL_COLUMNS,
    TEACHER_CONFIDENCE,
    behaviour_labels,
    build_labels,
    dataset_labels,
    parse_teacher,
)

from ..profiles.handmade import CUT
from .chat_server import free_port
from .conftest import TeacherServer


class Routed:
    """A TextBackend that sends each prompt to one of several served models, chosen by the test
    from the prompt (every answer is still a real generation over HTTP); records the replies."""

    name = "routed"

    def __init__(self, route: Callable[[str], object]) -> None:
        self.route = route
        self.replies: dict[str, str] = {}  # item category line -> reply
        self.prompts: list[str] = []

    def complete(self, prompt: str, max_new_tokens: int = 64) -> str:
        self.prompts.append(prompt)
        reply = self.route(prompt).complete(prompt, max_new_tokens=max_new_tokens)
        self.replies[prompt] = reply
        return reply

    def rationale(self, category: str, profile_text: str = "") -> str | None:
        """The rationale parsed from the one reply to the prompt with this category (and profile text)."""
        (reply,) = [r for p, r in self.replies.items() if f"Category: {category}" in p and profile_text in p]
        parsed = parse_teacher(reply)
        assert parsed is not None, reply
        return parsed[1]


def _by_pair(df: pd.DataFrame) -> dict[tuple[str, str], dict]:
    return {(r["user_id"], r["item_id"]): r for r in df.to_dict("records")}


def test_behaviour_rules_hand_built(hand: Dataset, hand_profiles: pd.DataFrame) -> None:
    lab = build_labels(hand, hand_profiles)
    assert list(lab.columns) == [*LABEL_COLUMNS, "as_of"] and (lab["as_of"] == CUT).all()
    got = {k: (r["label"], r["confidence"]) for k, r in _by_pair(lab).items()}
    # alice's history: Books/Poetry + Music/Jazz; bob's: Garden/Roses (events before day 30 only)
    assert got == {
        ("alice", "b5"): (1, 0.8),  # purchase of a Books/Mystery item: outside -> serendipitous
        ("alice", "g2"): (0, 0.55),  # skip of an unexpected item
        ("alice", "m2"): (0, 0.7),  # click inside the history: relevant, not serendipitous
        ("bob", "g2"): (1, 0.75),  # like of Garden/Bulbs: a new subcategory
        ("bob", "b1"): (0, 0.55),
    }
    assert set(lab["source"]) == {"behaviour"} and not lab["conflict"].any()
    m = lab.attrs["metrics"]
    assert (m["n_labels"], m["n_positive"], m["labels_behaviour"]) == (5, 2, 5)


def test_refuses_profiles_without_cutoff(hand: Dataset, tok) -> None:
    with pytest.raises(ConfigError, match="whole history"):
        build_labels(hand, build_profiles(hand, tok))


def test_behaviour_agrees_with_ground_truth(synth: Dataset, synth_profiles: pd.DataFrame) -> None:
    """The behaviour rule is a proxy for the generator's hidden ground truth; it must mostly agree."""
    beh, gt = behaviour_labels(synth, synth_profiles), dataset_labels(synth, synth_profiles)
    both = beh.merge(gt, on=["user_id", "item_id", "as_of"], suffixes=("_b", "_h"))
    assert len(both) >= 50
    assert (both["label_b"] == both["label_h"]).mean() >= 0.9
    # each label sits in its own snapshot's window: never before the cutoff of the profile it uses
    when = gt.merge(synth.labels[["user_id", "item_id", "timestamp"]], on=["user_id", "item_id"])
    assert (when["timestamp"] >= when["as_of"]).all()
    assert set(gt["as_of"]) <= set(synth_profiles["as_of"])


def test_precedence_human_teacher_behaviour(
    hand: Dataset, hand_profiles: pd.DataFrame, teacher_server: TeacherServer
) -> None:
    hand.labels = pd.DataFrame(
        {
            "user_id": ["alice", "alice"],
            "item_id": ["m2", "g1"],
            "serendipitous": [1, 0],
            "timestamp": [CUT + pd.Timedelta(days=5), CUT - pd.Timedelta(days=5)],  # g1: before cutoff -> ignored
            "source": ["panel", "panel"],
        }
    )
    hand.validate()
    yes, no = teacher_server.backend("yes"), teacher_server.backend("no")
    served = teacher_server.completions_served()
    teacher = Routed(lambda p: no if "Category: Garden/Bulbs" in p else yes)
    lab = build_labels(hand, hand_profiles, teacher=teacher)
    assert teacher_server.completions_served(served + 5) - served == 5  # every judgment was a real HTTP round trip
    rows = _by_pair(lab)
    assert ("alice", "g1") not in rows
    m2 = rows[("alice", "m2")]  # human 1 > teacher 1 > behaviour 0
    assert (m2["label"], m2["source"], m2["sources"], m2["conflict"]) == (1, "human", "human,teacher,behaviour", True)
    assert m2["rationale"] == teacher.rationale("Music/Jazz") is not None  # the teacher agreed with the final label
    b5 = rows[("alice", "b5")]  # teacher 1 agrees with behaviour 1
    assert (b5["label"], b5["source"], b5["confidence"], b5["conflict"]) == (1, "teacher", TEACHER_CONFIDENCE, False)
    assert b5["confidence"] == 0.8
    g2 = rows[("bob", "g2")]  # teacher 0 beats behaviour 1
    assert (g2["label"], g2["source"], g2["conflict"]) == (0, "teacher", True)
    bob_profile = hand_profiles.set_index("user_id").loc["bob", "profile_text"]
    assert g2["rationale"] == teacher.rationale("Garden/Bulbs", bob_profile) is not None
    assert b5["rationale"] == teacher.rationale("Books/Mystery")
    assert all(parse_teacher(r) is not None for r in teacher.replies.values())
    assert len(teacher.prompts) == 5 and all("Reply with Yes or No" in p for p in teacher.prompts)
    m = lab.attrs["metrics"]
    assert (m["labels_human"], m["labels_teacher"], m["labels_behaviour"]) == (1, 4, 0)
    assert m["teacher_ok"] == 5 and m["n_conflicts"] == 3  # m2, bob/g2, bob/b1 (teacher Yes vs a skip)


def test_survey_likert_mapping(hand: Dataset, hand_profiles: pd.DataFrame, tmp_path: Path) -> None:
    csv = tmp_path / "survey.csv"
    pd.DataFrame(
        {
            "user_id": ["alice", "alice", "alice", "bob", "bob", "bob"],
            "item_id": ["b5", "b5", "g2", "g2", "b1", "m1"],
            "Serendipity (1-5)": [5, 4, 1, 3, 2, 4],
            "comment": ["Loved this surprise", None, "not for me", "meh", None, ""],
        }
    ).to_csv(csv, index=False)
    rows = _by_pair(build_labels(hand, hand_profiles, human_csv=csv))
    assert (rows[("alice", "b5")]["label"], rows[("alice", "b5")]["confidence"]) == (1, 0.75)  # mean 4.5
    assert rows[("alice", "b5")]["rationale"] == "Loved this surprise"
    assert (rows[("alice", "g2")]["label"], rows[("alice", "g2")]["confidence"]) == (0, 1.0)
    assert rows[("bob", "g2")]["source"] == "behaviour"  # a neutral 3 carries no label
    assert (rows[("bob", "b1")]["label"], rows[("bob", "b1")]["confidence"], rows[("bob", "b1")]["source"]) == (
        0,
        0.5,
        "human",
    )
    assert (rows[("bob", "m1")]["label"], rows[("bob", "m1")]["source"], rows[("bob", "m1")]["detail"]) == (
        1,
        "human",
        "survey (n=1)",
    )
    assert rows[("alice", "b5")]["detail"] == "survey (n=2)"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            {"user_id": ["alice", "zed", "yan"], "item_id": ["b1"] * 3, "serendipity": [5] * 3},
            r"2 unknown user_id\(s\) \(e.g. 'zed', 'yan'\)",
        ),
        ({"user_id": ["alice"], "item_id": ["nope"], "serendipity": [5]}, r"unknown item_id.*'nope'"),
        ({"user_id": ["alice", "bob"], "item_id": ["b1", "b2"], "serendipity": [5, 9]}, "outside 1-5"),
        ({"user_id": ["alice"], "item_id": ["b1"], "score": [5]}, "missing column.*serendipity"),
    ],
)
def test_survey_bad_input(
    hand: Dataset, hand_profiles: pd.DataFrame, tmp_path: Path, frame: dict, message: str
) -> None:
    csv = tmp_path / "bad.csv"
    pd.DataFrame(frame).to_csv(csv, index=False)
    with pytest.raises(DataError, match=message) as err:
        build_labels(hand, hand_profiles, human_csv=csv)
    assert "\n" not in err.value.line()


def test_teacher_on_synthetic_data(synth: Dataset, synth_profiles: pd.DataFrame, teacher_server: TeacherServer) -> None:
    """Concurrent calls to the served model; its one answer becomes teacher labels with rationale."""
    served = teacher_server.completions_served()
    yes = teacher_server.backend("yes")
    teacher = Routed(lambda p: yes)
    lab = build_labels(synth, synth_profiles, teacher=teacher, teacher_max=12, teacher_workers=3)
    m = lab.attrs["metrics"]
    assert m["teacher_calls"] == m["teacher_ok"] == 12 and teacher_server.completions_served(served + 12) - served == 12
    assert (m["teacher_garbage"], m["teacher_errors"]) == (0, 0)
    teacher_rows = lab[lab["source"] == "teacher"]
    assert len(teacher_rows) == m["labels_teacher"] > 0
    assert (teacher_rows["label"] == 1).all() and (teacher_rows["confidence"] == TEACHER_CONFIDENCE).all()
    assert set(teacher_rows["rationale"]) <= {parse_teacher(r)[1] for r in teacher.replies.values()}
    assert (lab[lab["source"] == "human"]["confidence"] == 1.0).all()


def test_teacher_garbage_and_errors_are_counted_and_all_garbage_is_an_error(
    hand: Dataset, hand_profiles: pd.DataFrame, teacher_server: TeacherServer
) -> None:
    """The random tiny model answers blank lines (unparseable), a model the server cannot load
    is an HTTP 500 (an error); those pairs keep their behaviour label, the rest take the teacher's."""
    random_model = teacher_server.backend("random")
    assert random_model.complete("Is this new to them? Reply with Yes or No.") == ""  # what it really answers
    assert parse_teacher("") is None
    missing = teacher_server.backend(str(teacher_server.log.parent / "no_such_model"))
    yes = teacher_server.backend("yes")

    def route(prompt: str) -> object:
        if "Category: Garden" in prompt:  # alice/g2, bob/g2
            return random_model
        if "Category: Music/Jazz" in prompt:  # alice/m2
            return missing
        return yes  # alice/b5, bob/b1

    lab = build_labels(hand, hand_profiles, teacher=Routed(route))
    m = lab.attrs["metrics"]
    assert (m["teacher_calls"], m["teacher_ok"], m["teacher_garbage"], m["teacher_errors"]) == (5, 2, 2, 1)
    got = {k: (r["label"], r["source"], r["confidence"]) for k, r in _by_pair(lab).items()}
    assert got == {
        ("alice", "b5"): (1, "teacher", TEACHER_CONFIDENCE),
        ("bob", "b1"): (1, "teacher", TEACHER_CONFIDENCE),  # teacher Yes beats the skip
        ("alice", "g2"): (0, "behaviour", 0.55),  # garbage: the behaviour label stays
        ("bob", "g2"): (1, "behaviour", 0.75),
        ("alice", "m2"): (0, "behaviour", 0.7),  # error: the behaviour label stays
    }
    assert (m["labels_teacher"], m["labels_behaviour"]) == (2, 3)

    with pytest.raises(
        ServiceError, match=r"teacher: all 5 calls failed \(0 errors, 5 unparseable; e.g. unparseable reply ''"
    ) as err:
        build_labels(hand, hand_profiles, teacher=random_model)
    assert "\n" not in err.value.line() and "Fix:" in err.value.line()


def test_teacher_endpoint_down_fails_fast(hand: Dataset, hand_profiles: pd.DataFrame) -> None:
    from seren.llm.backends import OpenAIBackend

    down = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", "m", retries=1, timeout=2.0)
    calls: list[str] = []
    complete = down.complete

    def counted(prompt: str, max_new_tokens: int = 64) -> str:
        calls.append(prompt)
        return complete(prompt, max_new_tokens)

    down.complete = counted  # type: ignore[method-assign]
    with pytest.raises(ServiceError, match="failed on all of the first 3 calls") as err:
        build_labels(hand, hand_profiles, teacher=down)
    assert len(calls) == 3  # the probe stops at 3 of the 5 pairs instead of trying them all
    assert "Fix:" in err.value.line() and "Connection" in err.value.line()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Yes. It is new to them.", (1, "It is new to them.")),
        ("no - they already read poetry every week. Also more text", (0, "they already read poetry every week.")),
        ("Answer: Yes, because jazz sits next to blues", (1, "because jazz sits next to blues.")),
        ("**No**", (0, None)),
        ('{"label": "yes", "rationale": "A sibling of their favourite."}', (1, "A sibling of their favourite.")),
        ('Sure! {"answer": false, "reason": "unrelated"}', (0, "unrelated.")),
        ("Yes or no: hard to say", None),
        ("Maybe.", None),
        ("I think the answer is yes", None),
        ("", None),
    ],
)
def test_parse_teacher(reply: str, expected: tuple | None) -> None:
    assert parse_teacher(reply) == expected


def test_snapshots_label_each_window_against_its_own_profile(hand: Dataset, tok) -> None:
    """Two cutoffs (day 20, day 30): events in [20, 30) are judged against the day-20 profile."""
    from seren.profiles import build_profile_snapshots

    cut20 = CUT - pd.Timedelta(days=10)
    snaps = build_profile_snapshots(hand, tok, [CUT, cut20])
    assert sorted(snaps["as_of"].unique()) == [cut20, CUT]
    assert snaps.attrs["metrics"]["n_snapshots"] == 2
    lab = build_labels(hand, snaps)
    early = _by_pair(lab[lab["as_of"] == cut20])
    # as of day 20 alice's history is Books/Poetry + one Jazz click (day 16); days 22-27:
    # m2 like (Jazz, inside) -> 0, m3 click -> 0, m1 purchase -> 0, g1 skip (unexpected) -> 0
    assert {k: v["label"] for k, v in early.items()} == {
        ("alice", "m1"): 0,
        ("alice", "m2"): 0,
        ("alice", "m3"): 0,
        ("alice", "g1"): 0,
    }
    late = lab[lab["as_of"] == CUT]
    assert len(late) == 5 and lab.attrs["metrics"]["n_snapshots"] == 2
    # no label is about an event its own profile has seen
    assert (lab["as_of"] >= cut20).all()


def test_per_user_snapshots_window_per_user(synth: Dataset, tok) -> None:
    """Per-user cutoffs: every label lies at/after its own user's snapshot cutoff and before the next."""
    from seren.profiles import build_profile_snapshots, labeling_cutoffs

    cuts = labeling_cutoffs(synth.interactions, 0.6, snapshots=2, per_user=True)
    snaps = build_profile_snapshots(synth, tok, cuts)
    assert snaps.attrs["metrics"]["as_of_per_user"] and snaps["as_of"].nunique() > 2
    lab = build_labels(synth, snaps)
    ev = synth.interactions.merge(lab[["user_id", "item_id", "as_of"]], on=["user_id", "item_id"])
    nxt = cuts[1].rename("next")
    ev = ev.join(nxt, on="user_id")
    first = lab["as_of"] == lab["user_id"].map(cuts[0])
    assert first.any() and (~first).any()
    # each labeled pair has an event inside its own window
    ev["inside"] = (ev["timestamp"] >= ev["as_of"]) & ((ev["as_of"] == ev["next"]) | (ev["timestamp"] < ev["next"]))
    assert ev.groupby(["user_id", "item_id", "as_of"])["inside"].any().all()
