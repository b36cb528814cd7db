"""Slot error rate (SER) of data-to-text outputs, after Dušek et al. (2019, 2020) for the E2E NLG data.

A meaning representation (MR) is a list of ``slot[value]`` items, e.g.
``name[The Eagle], eatType[coffee shop], familyFriendly[yes], near[Burger King]``. Each slot of the MR is
checked in the output text with hand-written patterns (paraphrases count: familyFriendly[yes] is realised
by "kid friendly", priceRange[cheap] by "low-priced" or "inexpensive"):

- **missing**: the MR's value is not mentioned and no other value of that slot is;
- **wrong**: another value of that slot is mentioned and the MR's value is not;
- **added**: the MR has no such slot but the text mentions one of its values (hallucinated content).

SER = (missing + wrong + added) / slots in the MR. Slots of the E2E ontology have value patterns; any other
slot (a name-like slot of another data set) is checked for its literal value only, so it can be missing but
never wrong or added. Venue names (``name``, ``near``) are literal; a known venue name that the MR does not
hold counts as added or wrong. Names are masked before the other slots are matched, so "Café Sicilia" is no
coffee shop and "Raja Indian Cuisine" no Indian food.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

MR_ITEM = re.compile(r"\s*([A-Za-z][\w ]*?)\s*\[([^\[\]]*)\]\s*")
#: slots whose values are proper names, matched literally
NAME_SLOTS = ("name", "near")
_NOT = r"(?:not|isn't|is not|aren't|are not|non|no|never)"
_KIDS = r"(?:famil(?:y|ies)|kids?|child(?:ren)?|children's)"
_RATED = r"(?:rat(?:ings?|ed|es)|review(?:s|ed)?|stars?|scores?)"
_PRICED = r"(?:pric(?:e|ed|es|ing)|cost(?:s|ing)?|menu|meals?|food|dishes)"

#: slot → value → patterns that realise the value (case-insensitive, matched as whole words)
PATTERNS: dict[str, dict[str, tuple[str, ...]]] = {
    "familyFriendly": {
        "no": (rf"{_NOT}[\w' -]{{0,20}}?{_KIDS}[- ]?friendly",
               rf"{_NOT} (?:suitable|good|ideal|great|welcoming|conducive|for|open to|allow(?:ed)?|"
               rf"cater(?:s|ing)? (?:for|to))[\w ]{{0,12}}?{_KIDS}", r"adults?[- ]only", rf"no {_KIDS}",
               rf"{_KIDS} (?:are )?not (?:welcome|allowed)", r"unfriendly to (?:families|kids|children)"),
        "yes": (rf"{_KIDS}[- ]?friendly", rf"(?:suitable|good|ideal|great|welcoming|perfect|open) (?:for|to) "
                rf"(?:the (?:whole )?)?{_KIDS}", rf"{_KIDS} (?:are )?welcome", rf"welcomes? {_KIDS}",
                rf"friendly (?:for|to(?:wards)?) {_KIDS}", rf"caters? (?:for|to) {_KIDS}",
                r"for the whole family", r"family[- ](?:oriented|style|place|venue|restaurant|pub|establishment)"),
    },
    "priceRange": {
        "cheap": (r"cheap(?:ly|er|est)?", r"inexpensive(?:ly)?", r"low[- ](?:priced?|prices|cost)",
                  rf"low (?:in )?{_PRICED}", r"affordabl[ey]", r"budget", r"bargain"),
        "moderate": (r"moderate(?:ly)?(?:[- ]priced?)?", r"mid[- ]?(?:range|priced?)", r"average[- ]priced?",
                     rf"average {_PRICED}", r"reasonabl[ey](?: priced?)?", r"fairly priced"),
        "high": (r"expensive", r"high[- ](?:priced?|prices|cost|end)", rf"high (?:in )?{_PRICED}",
                 r"pric(?:ey|y)", r"costly", r"upmarket", r"upscale"),
        "less than £20": (r"(?:less than|under|below|lower than) (?:£ ?20|20)", r"£ ?20 or less"),
        "£20-25": (r"£ ?20 ?(?:-|–|to|and) ?£? ?25", r"20 ?(?:-|to) ?25 (?:pounds|GBP)",
                   r"between £? ?20 and £? ?25"),
        "more than £30": (r"(?:more than|over|above|higher than|upwards of|in excess of) (?:£ ?30|30 (?:pounds|GBP))",
                          r"£ ?30 (?:or more|plus|and (?:up|above|over))", r"£ ?30\+"),
    },
    "customer rating": {
        "low": (rf"low(?:ly)?[- ](?:customer )?{_RATED}", rf"{_RATED} (?:is |are |of |as )?(?:low|poor)(?:ly)?",
                rf"poor(?:ly)? (?:customer )?{_RATED}", r"1 out of 5", r"one out of five", r"(?:1|one)[- ]stars?",
                rf"{_RATED} (?:of )?1\b"),
        "average": (rf"average (?:\w+ )?{_RATED}", rf"{_RATED} (?:is |are |of |as )?(?:average|mediocre|ok)",
                    r"3 out of 5", r"three out of five", r"(?:3|three)[- ]stars?", rf"mediocre (?:customer )?{_RATED}"),
        "high": (rf"high(?:ly)?[- ](?:customer )?{_RATED}",
                 rf"{_RATED} (?:is |are |of |as )?(?:high|excellent|great)(?:ly)?",
                 rf"(?:excellent|great|top|good) (?:customer )?{_RATED}", r"5 out of 5", r"five out of five",
                 r"(?:5|five)[- ]stars?", rf"well[- ]{_RATED}"),
    },
    "eatType": {
        "coffee shop": (r"coffee[- ]?shops?", r"caf[eé]s?", r"coffee[- ]?houses?", r"coffee place"),
        "pub": (r"pubs?", r"bars?", r"taverns?", r"inns?"),
        "restaurant": (r"restaurants?", r"eater(?:y|ies)", r"dining establishment", r"diners?", r"bistros?"),
    },
    "food": {
        "Chinese": (r"chinese", r"cantonese", r"dim sum"), "English": (r"english", r"british"),
        "French": (r"french",), "Indian": (r"indian", r"curry", r"curries"),
        "Fast food": (r"fast[- ]food", r"burgers?", r"fries"), "Japanese": (r"japanese", r"sushi"),
        "Italian": (r"italian", r"pasta", r"pizzas?"),
    },
    "area": {
        "riverside": (r"river ?side", r"river(?:bank|front)?", r"waterfront", r"by the water"),
        "city centre": (r"city[- ]cent(?:re|er)", r"cent(?:re|er) of (?:the )?(?:city|town)", r"downtown",
                        r"town[- ]cent(?:re|er)", r"city's cent(?:re|er)", r"central"),
    },
}
#: values that also realise an MR value: "cheap" says "less than £20", a star count says its rating word
EQUIVALENT: dict[str, dict[str, frozenset[str]]] = {
    "priceRange": {"less than £20": frozenset({"cheap"}), "cheap": frozenset({"less than £20"}),
                   "£20-25": frozenset({"moderate"}), "moderate": frozenset({"£20-25"}),
                   "more than £30": frozenset({"high"}), "high": frozenset({"more than £30"})},
    "customer rating": {"1 out of 5": frozenset({"low"}), "low": frozenset({"1 out of 5"}),
                        "3 out of 5": frozenset({"average"}), "average": frozenset({"3 out of 5"}),
                        "5 out of 5": frozenset({"high"}), "high": frozenset({"5 out of 5"})},
}
#: star-count rating values share the patterns of their words (a "5 out of 5" mention realises "high" and back)
for _stars, _word in (("1 out of 5", "low"), ("3 out of 5", "average"), ("5 out of 5", "high")):
    PATTERNS["customer rating"][_stars] = PATTERNS["customer rating"][_word]
#: how a planted error words each value (``plant_error``); each is realised by its own value's patterns
SURFACE: dict[str, dict[str, str]] = {
    "familyFriendly": {"yes": "family friendly", "no": "not family friendly"},
    "priceRange": {"cheap": "cheap", "moderate": "moderately priced", "high": "expensive",
                   "less than £20": "less than £20", "£20-25": "£20-25", "more than £30": "more than £30"},
    "customer rating": {"low": "low customer rating", "average": "average customer rating",
                        "high": "high customer rating", "1 out of 5": "customer rating 1 out of 5",
                        "3 out of 5": "customer rating 3 out of 5", "5 out of 5": "customer rating 5 out of 5"},
    "eatType": {"coffee shop": "coffee shop", "pub": "pub", "restaurant": "restaurant"},
    "food": {"Chinese": "Chinese", "English": "English", "French": "French", "Indian": "Indian",
             "Fast food": "fast food", "Japanese": "Japanese", "Italian": "Italian"},
    "area": {"riverside": "riverside", "city centre": "city centre"},
}
_COMPILED = {slot: {value: re.compile(r"(?<!\w)(?:" + "|".join(p) + r")(?!\w)", re.IGNORECASE)
                    for value, p in values.items()} for slot, values in PATTERNS.items()}


def parse_mr(text: str) -> list[tuple[str, str]] | None:
    """The (slot, value) items of ``text`` when the whole text is an MR (``slot[value], slot[value]``), else None."""
    if not isinstance(text, str) or "[" not in text:
        return None
    items = []
    for part in text.split("],"):
        part = part if part.rstrip().endswith("]") else part + "]"
        m = MR_ITEM.fullmatch(part)
        if m is None:
            return None
        items.append((m.group(1).strip(), m.group(2).strip()))
    return items


def is_data_to_text(inputs: Iterable) -> bool:
    """Every input is an MR (at least one input): outputs of such a run get a slot error rate."""
    inputs = list(inputs)
    return bool(inputs) and all(parse_mr(x) for x in inputs)


@dataclass
class SlotErrors:
    """The slot errors of one output: missing, wrong and added slots, over the MR's slot count."""

    slots: int
    missing: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return len(self.missing) + len(self.wrong) + len(self.added)

    @property
    def ser(self) -> float:
        return self.errors / self.slots if self.slots else 0.0


def _mask(text: str, names: Iterable[str]) -> tuple[str, set[str]]:
    """``text`` with every known name blanked out (longest first), and the names it held."""
    found = set()
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        pattern = re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)", re.IGNORECASE)
        if pattern.search(text):
            found.add(name)
            text = pattern.sub(" ", text)
    return text, found


def mentioned(slot: str, text: str) -> set[str]:
    """The values of ``slot`` that ``text`` realises (a negated family-friendly mention is "no" only)."""
    found = set()
    for value, pattern in _COMPILED[slot].items():
        if pattern.search(text):
            found.add(value)
            if slot == "familyFriendly" and value == "no":
                text = pattern.sub(" ", text)  # "not kid friendly" is no "kid friendly"
    return found


def check(mr: Sequence[tuple[str, str]], text: str, known_names: Iterable[str] = ()) -> SlotErrors:
    """The slot errors of ``text`` against ``mr`` (parsed with ``parse_mr``); ``known_names``: venue names of
    the data set, so a name the MR does not hold is caught."""
    values: dict[str, set[str]] = {}
    for slot, value in mr:
        values.setdefault(slot, set()).add(value)
    names = {v for s, v in mr if s in NAME_SLOTS} | set(known_names)
    rest, named = _mask(" ".join(text.split()), names | {v for s, v in mr if s not in PATTERNS})
    out = SlotErrors(slots=len(mr))
    extra_names = sorted(named - {v for s, v in mr if s not in PATTERNS})
    for slot, value in mr:
        if slot in PATTERNS or value in named:
            continue
        if slot in NAME_SLOTS and extra_names:  # another venue named in its place
            out.wrong.append(f"{slot}:{extra_names.pop(0)}")
        else:
            out.missing.append(slot)
    out.added += [f"name:{name}" for name in extra_names]
    for slot in PATTERNS:
        said = mentioned(slot, rest)
        if slot not in values:
            if said:
                out.added.append(slot)
            continue
        accepted = values[slot] | {e for v in values[slot] for e in EQUIVALENT.get(slot, {}).get(v, ())}
        if not said & accepted:
            (out.wrong if said else out.missing).append(slot)
    return out


def corpus_ser(inputs: Sequence[str], outputs: Sequence[str]) -> tuple[dict[str, float], list[SlotErrors]]:
    """SER over a corpus (total errors / total MR slots, 0–100) and its parts, plus each output's errors.
    Venue names of every MR in ``inputs`` are the known names."""
    mrs = [parse_mr(x) or [] for x in inputs]
    known = {v for mr in mrs for s, v in mr if s in NAME_SLOTS}
    per = [check(mr, text, known) for mr, text in zip(mrs, outputs)]
    slots = sum(p.slots for p in per) or 1
    scores = {"ser": 100 * sum(p.errors for p in per) / slots}
    for part in ("missing", "wrong", "added"):
        scores[f"ser_{part}"] = 100 * sum(len(getattr(p, part)) for p in per) / slots
    scores["ser_outputs_with_errors"] = 100 * sum(p.errors > 0 for p in per) / max(len(per), 1)
    return scores, per


def _spans(mr: Sequence[tuple[str, str]], text: str, known_names: Iterable[str]) -> list[tuple[str, int, int]]:
    """(slot, start, end) of each MR slot's realisation in ``text`` that a planted error could replace."""
    values = dict(mr)
    found = []
    for slot, value in mr:
        if slot in NAME_SLOTS and set(known_names) - {value}:
            m = re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", text)
            found += [(slot, m.start(), m.end())] if m else []
        elif slot in PATTERNS and value in _COMPILED[slot]:
            m = _COMPILED[slot][value].search(text)
            found += [(slot, m.start(), m.end())] if m and values.get(slot) == value else []
    return found


def plant_error(mr: Sequence[tuple[str, str]], text: str, known_names: Iterable[str], rng) -> str | None:
    """``text`` with one realised slot given a wrong value (a name another known venue), checked to hold a slot
    error; None when no slot of ``text`` can be replaced. ``rng`` is a ``random.Random``."""
    spans = _spans(mr, text, known_names)
    rng.shuffle(spans)
    values = dict(mr)
    for slot, start, end in spans:
        if slot in NAME_SLOTS:
            others = sorted(set(known_names) - {v for _, v in mr})
        else:
            accepted = {values[slot], *EQUIVALENT.get(slot, {}).get(values[slot], ())}
            others = [v for v in SURFACE[slot] if v not in accepted]
        if not others:
            continue
        other = rng.choice(others)
        planted = text[:start] + (other if slot in NAME_SLOTS else SURFACE[slot][other]) + text[end:]
        if check(mr, planted, known_names).errors > check(mr, text, known_names).errors:
            return planted
    return None
