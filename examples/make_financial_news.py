"""Write examples/financial_news.csv: a small synthetic financial-news sentiment set for the demo.

The sentences are composed by this script from hand-written templates (no external data),
seeded, so the file is reproducible: python examples/make_financial_news.py
"""
from __future__ import annotations

import csv
import random
from pathlib import Path

COMPANIES = ["Nordvik Bank", "Acme Corp", "Helios Energy", "Baltic Shipping", "Orion Telecom", "Vega Retail",
             "Kestrel Mining", "Lumen Software", "Atlas Motors", "Pioneer Foods", "Summit Insurance",
             "Crescent Pharma", "Granite Steel", "Harbor Logistics", "Zenith Airlines", "Maple Paper"]
METRICS = ["net profit", "operating profit", "revenue", "net sales", "earnings per share", "order intake",
           "operating margin", "quarterly sales", "cash flow", "pre-tax profit"]
PERIODS = ["in the third quarter", "in Q2", "for the full year", "in the first half", "in 2025",
           "compared with a year earlier", "in the January-March period", "in the fourth quarter"]
POS_VERBS = ["rose", "increased", "jumped", "climbed", "grew", "surged", "improved"]
NEG_VERBS = ["fell", "decreased", "dropped", "declined", "slumped", "plunged", "shrank"]
POS_EXTRA = ["{c} raised its outlook for the year after strong demand.",
             "{c} won a major contract worth EUR {n} million.",
             "Shares in {c} gained {p}% after the company beat analyst expectations.",
             "{c} said demand recovered faster than expected, lifting its guidance.",
             "{c} will pay a higher dividend after a record year.",
             "Analysts upgraded {c} to buy, citing improving margins.",
             "{c} narrowed its operating loss to EUR {n} million {period}.",
             "Despite weaker markets, {c} grew its order book {period}."]
NEG_EXTRA = ["{c} issued a profit warning, citing weak demand.",
             "{c} will cut {n} jobs as sales continue to slide.",
             "Shares in {c} lost {p}% after the company missed forecasts.",
             "{c} swung to a loss of EUR {n} million.",
             "{c} cancelled its dividend amid mounting debt.",
             "Analysts downgraded {c} to sell over falling orders.",
             "{c}'s operating loss widened to EUR {n} million {period}.",
             "Although revenue rose, {c}'s margin collapsed {period}."]
NEU_EXTRA = ["{c} will publish its interim report on {d}.",
             "{c} appointed a new chief financial officer effective {d}.",
             "{c} has its headquarters in {city}.",
             "The annual general meeting of {c} will be held on {d}.",
             "{c} operates {n} stores in {city} and the surrounding region.",
             "{c} said the transaction is not expected to affect its results.",
             "The shares of {c} are listed on the {city} stock exchange.",
             "{c} completed the previously announced merger of two subsidiaries.",
             "{c}'s {metric} was EUR {n} million {period}.",
             "{c}'s {metric} was unchanged {period}.",
             "{c} expects its {metric} to be at the same level as last year."]
DATES = ["12 March", "1 April", "30 June", "15 September", "3 November", "10 December"]
CITIES = ["Helsinki", "Oslo", "Stockholm", "Frankfurt", "London", "Tallinn"]


def sentence(rng: random.Random, label: str) -> str:
    c, n, p = rng.choice(COMPANIES), rng.randint(2, 900), rng.randint(2, 25)
    fill = dict(c=c, n=n, p=p, d=rng.choice(DATES), city=rng.choice(CITIES), period=rng.choice(PERIODS),
                metric=rng.choice(METRICS))
    if label == "neutral":
        return rng.choice(NEU_EXTRA).format(**fill)
    if rng.random() < 0.5:
        return rng.choice(POS_EXTRA if label == "positive" else NEG_EXTRA).format(**fill)
    verb = rng.choice(POS_VERBS if label == "positive" else NEG_VERBS)
    return f"{c}'s {rng.choice(METRICS)} {verb} {p}% {rng.choice(PERIODS)}."


def main(path: Path = Path(__file__).with_name("financial_news.csv"), n_per_label: int = 160) -> None:
    rng = random.Random(13)
    rows, seen = [], set()
    for label in ("negative", "neutral", "positive"):
        while sum(r[1] == label for r in rows) < n_per_label:
            s = sentence(rng, label)
            if s not in seen:
                seen.add(s)
                rows.append((s, label))
    rng.shuffle(rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
