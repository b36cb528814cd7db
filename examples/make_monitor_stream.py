"""Build the monitor demo stream from labelled sentences (synthetic times and companies).

    python examples/make_monitor_stream.py examples/financial_news.csv demo_stream.jsonl --hours 48 --surge-start 36

The sentences: a CSV/JSONL with text and label (negative/neutral/positive) columns, such as the repository's
examples/financial_news.csv, or a Financial PhraseBank Sentences_*.txt file for real newswire sentences
(https://huggingface.co/datasets/takala/financial_phrasebank).

Writes the JSONL stream and demo_stream.jsonl.manifest.json (when the planted surge starts and ends).
"""
from __future__ import annotations

import argparse
from dataclasses import fields

from graftkit.apps.monitor.demo import DemoSpec, write_demo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sentences", help="labelled sentences: a CSV/JSONL with text and label columns, or a Financial "
                   "PhraseBank Sentences_*.txt file")
    p.add_argument("out", help="the JSONL stream to write")
    for f in fields(DemoSpec):
        kind = int if f.type in ("int", "int | None") else float if f.type.startswith("float") else str
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default)
    args = vars(p.parse_args())
    sentences, out = args.pop("sentences"), args.pop("out")
    manifest = write_demo(sentences, out, DemoSpec(**args))
    print(f"{manifest['items']} items → {out}; surge for {manifest['surge_company']} "
          f"from {manifest['surge_start']:.0f} to {manifest['surge_end']:.0f} (epoch s)")


if __name__ == "__main__":
    main()
