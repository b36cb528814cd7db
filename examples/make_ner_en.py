"""Write examples/ner_en.conll: a small synthetic English NER set (PER, ORG, LOC, MISC) for the demo.

Sentences are composed by this script from hand-written templates and name lists (no external
data), seeded, so the file is reproducible: python examples/make_ner_en.py
The file is CoNLL-2003 style: token, a part-of-speech placeholder column and the IOB2 tag;
documents start with -DOCSTART-, sentences are separated by blank lines.
"""
from __future__ import annotations

import random
from pathlib import Path

PER = ["Angela Merkel", "Maria Lindqvist", "John Carter", "Aiko Tanaka", "Pedro Alvarez", "Fatima Okafor",
       "Lars Nyberg", "Chen Wei", "Emma Dubois", "Rahul Mehta", "Olga Petrova", "James O'Neill"]
ORG = ["Siemens", "Nordvik Bank", "Acme Corp", "the United Nations", "Helios Energy", "Orion Telecom",
       "the European Commission", "Atlas Motors", "Kestrel Mining", "Lumen Software"]
LOC = ["Munich", "Helsinki", "Oslo", "Paris", "New York", "Tokyo", "Lagos", "Buenos Aires", "the Baltic Sea",
       "Mount Kenya"]
MISC = ["German", "French", "Japanese", "Nigerian", "Olympic", "Nobel Prize", "World Cup", "Brexit"]
TEMPLATES = [
    "{PER} visited the {ORG} plant in {LOC} on Monday .",
    "{ORG} said on Tuesday that {PER} will lead its office in {LOC} .",
    "The {MISC} delegation met {PER} in {LOC} .",
    "{PER} , a spokesperson for {ORG} , declined to comment .",
    "Shares in {ORG} rose 4 percent after the {MISC} regulator approved the deal .",
    "{PER} flew from {LOC} to {LOC} for talks with {ORG} .",
    "Fans of the {MISC} team celebrated in {LOC} .",
    "{ORG} and {ORG} signed a supply agreement in {LOC} .",
    "{PER} won the {MISC} award last year .",
    "Heavy rain closed roads around {LOC} , officials said .",
    "{PER} told reporters that {ORG} would not cut jobs .",
    "The company opened a new office near {LOC} .",
]
TYPES = {"PER": PER, "ORG": ORG, "LOC": LOC, "MISC": MISC}


def sentence(rng: random.Random, template: str) -> list[tuple[str, str]]:
    """Fill a template; every token gets its IOB2 tag."""
    out: list[tuple[str, str]] = []
    for piece in template.split():
        if piece.startswith("{") and piece.endswith("}"):
            typ = piece[1:-1]
            for i, tok in enumerate(rng.choice(TYPES[typ]).split()):
                if typ in ("ORG", "LOC") and i == 0 and tok == "the":
                    out.append((tok, "O"))  # CoNLL convention: the article is outside the name
                    continue
                inside = out and out[-1][1] != "O" and out[-1][1][2:] == typ and i > 0
                out.append((tok, ("I-" if inside else "B-") + typ))
        else:
            out.append((piece, "O"))
    return out


def main(path: Path = Path(__file__).with_name("ner_en.conll"), n: int = 160, seed: int = 13) -> None:
    rng = random.Random(seed)
    lines = []
    for k in range(n):
        if k % 40 == 0:
            lines += ["-DOCSTART- -X- O", ""]
        for tok, tag in sentence(rng, rng.choice(TEMPLATES)):
            lines.append(f"{tok} {'NNP' if tag != 'O' else 'XX'} {tag}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
