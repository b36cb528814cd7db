"""Small generated click logs in the MIND format, for tests and the labelled-as-generated benchmark.

Items belong to topics and their titles are made from topic words; each user prefers one or two
topics; a candidate from a preferred topic is clicked far more often. Some items are globally
popular (shown and clicked more), so a popularity baseline has something to find too. The data is
GENERATED: it says nothing about real news recommendation quality.
"""
from __future__ import annotations

import random
from pathlib import Path

TOPICS = {
    "sports": ["match", "league", "coach", "goal", "season", "striker", "final", "tennis"],
    "finance": ["shares", "profit", "market", "bank", "earnings", "investors", "bond", "inflation"],
    "tech": ["software", "chip", "startup", "phone", "cloud", "robot", "app", "laptop"],
    "health": ["doctors", "vaccine", "hospital", "diet", "sleep", "clinic", "therapy", "virus"],
    "travel": ["flights", "hotel", "beach", "island", "airport", "museum", "train", "mountains"],
    "food": ["recipe", "chef", "restaurant", "bread", "coffee", "cheese", "pasta", "market stall"],
}
VERBS = ["reports", "faces", "announces", "wins", "plans", "reveals", "loses", "backs"]


def write_mind(folder: str | Path, users: int = 60, items: int = 120, impressions: int = 300,
               candidates: int = 8, seed: int = 0) -> Path:
    """Write ``news.tsv`` and ``behaviors.tsv`` (MIND layout) into ``folder``; returns the folder."""
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    topics = list(TOPICS)
    news = []
    for i in range(items):
        topic = topics[i % len(topics)]
        words = rng.sample(TOPICS[topic], 3)
        title = f"{words[0].capitalize()} {rng.choice(VERBS)} {words[1]} and {words[2]}"
        news.append((f"N{i + 1}", topic, title))
    popular = {n[0] for n in rng.sample(news, max(1, items // 10))}
    by_topic = {t: [n for n in news if n[1] == t] for t in topics}
    with open(folder / "news.tsv", "w", encoding="utf-8") as fh:
        for nid, topic, title in news:
            fh.write(f"{nid}\t{topic}\t{topic}-general\t{title}\tAn article about {topic}.\t\t[]\t[]\n")
    prefs = {f"U{u + 1}": rng.sample(topics, rng.choice((1, 2))) for u in range(users)}
    with open(folder / "behaviors.tsv", "w", encoding="utf-8") as fh:
        for k in range(impressions):
            user = f"U{rng.randrange(users) + 1}"
            liked = [n for t in prefs[user] for n in by_topic[t]]
            history = [n[0] for n in rng.sample(liked, min(len(liked), rng.randint(3, 8)))]
            shown = rng.sample(news, candidates)
            shown += [n for n in news if n[0] in popular and rng.random() < 0.2][:2]
            cells = []
            for nid, topic, _ in shown:
                p = 0.55 if topic in prefs[user] else 0.04
                p = min(0.95, p + (0.25 if nid in popular else 0.0))
                cells.append(f"{nid}-{int(rng.random() < p)}")
            if not any(c.endswith("-1") for c in cells):  # MIND impressions have at least one click
                pick = next((i for i, n in enumerate(shown) if n[1] in prefs[user]), 0)
                cells[pick] = cells[pick][:-1] + "1"
            when = f"11/{k % 28 + 1}/2019 {k % 12 + 1}:00:00 AM"
            fh.write(f"I{k + 1}\t{user}\t{when}\t{' '.join(history)}\t{' '.join(cells)}\n")
    return folder
