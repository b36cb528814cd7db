"""PII masking on a labelled corpus: positives must be masked, dates/amounts/percentages/tickers must
survive, and Financial PhraseBank sentences come out unchanged unless they hold contact numbers.
Precision and recall are printed (pytest -s)."""
from __future__ import annotations

import re
import pytest
from conftest import SHARED_DATA

from graftkit.serve.pii import find_pii, mask_pii

# (text, the personal data in it); every other character must survive
POSITIVES = [
    ("Mail jane.doe@example.com today", ["jane.doe@example.com"]),
    ("card 4111 1111 1111 1111 and 5500-0000-0000-0004", ["4111 1111 1111 1111", "5500-0000-0000-0004"]),
    ("call +1 415 555 0134 or (415) 555-0134", ["+1 415 555 0134", "(415) 555-0134"]),
    ("call 555-1234 after six", ["555-1234"]),
    ("ruf mich an: 0171 1234567", ["0171 1234567"]),
    ("London office 020 7946 0958, +44 20 7946 0958", ["020 7946 0958", "+44 20 7946 0958"]),
    ("IBAN DE89 3704 0044 0532 0130 00", ["DE89 3704 0044 0532 0130 00"]),
    ("iban de89370400440532013000 please", ["de89370400440532013000"]),
    ("pay to gb82 west 1234 5698 7654 32", ["gb82 west 1234 5698 7654 32"]),
    ("手机 13812345678，请回电", ["13812345678"]),
    ("电话 +86 138 1234 5678", ["+86 138 1234 5678"]),
    ("身份证号 11010519491231002X", ["11010519491231002X"]),
    ("SSN 078-05-1120 on file", ["078-05-1120"]),
    ("tel. +358 9 7597 0711 (Helsinki)", ["+358 9 7597 0711"]),
]
NEGATIVES = [
    "The report is dated 2024-01-15 and was signed on 15.01.2024 .",
    "Revenue rose 12.5% to EUR 1,200 million in 2009 .",
    "Nokia (NOK1V) rose 3.2 % to EUR 12.15 ; AAPL closed at $189.98 .",
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007 .",
    "The company sold 1,234,567 shares for 20,071,000 euros in 2007-2008 .",
    "Order 12345678 shipped on 03/04/2021 at 09:30 ; invoice 2010-03-04 .",
    "Net sales were EUR 131 million to EUR 176 million in Q3 2009 .",
    "Version 1.2.3.4 of the 2019.12.31 build; ratio 0.9876543 .",
    "净利润增长12.5%，达到1234567元。",
    "Business Identity Code : 0101138-5 ; 11010519491231002 is not an ID (17 digits) .",
    "Card-like 4111 1111 1111 1112 fails Luhn; IBAN DE00 3704 0044 0532 0130 00 fails mod 97 .",
]

FPB = SHARED_DATA / "financial_phrasebank" / "Sentences_AllAgree.txt"
# a rule independent of the masker: FPB sentences that hold contact numbers
CONTACT = re.compile(r"\+\d{1,3} \d|\btel\. |Telephone :|callers")


def _score(text: str, expected: list[str]) -> tuple[int, int, int]:
    spans = [(s, e) for s, e, _ in find_pii(text)]
    want = []
    for item in expected:
        start = text.index(item)
        want.append((start, start + len(item)))
    tp = sum(any(s <= ws and we <= e for s, e in spans) for ws, we in want)
    fp = sum(not any(s < we and ws < e for ws, we in want) for s, e in spans)
    return tp, fp, len(want) - tp


def test_pii_corpus_precision_recall():
    tp = fp = fn = 0
    failures = []
    for text, expected in POSITIVES + [(t, []) for t in NEGATIVES]:
        a, b, c = _score(text, expected)
        tp, fp, fn = tp + a, fp + b, fn + c
        if b or c:
            failures.append((text, mask_pii(text)))
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    print(f"\nPII corpus: {len(POSITIVES)} positive and {len(NEGATIVES)} negative texts, {tp + fn} items: "
          f"precision {precision:.3f}, recall {recall:.3f} (tp {tp}, fp {fp}, fn {fn})")
    assert not failures, failures


def test_negatives_come_out_unchanged():
    for text in NEGATIVES:
        assert mask_pii(text) == text


def test_masks_replace_only_the_personal_data():
    assert mask_pii("Mail jane.doe@example.com, card 4111 1111 1111 1111, call +1 415 555 0134") == \
        "Mail [EMAIL], card [CARD], call [PHONE]"
    assert mask_pii("iban de89 3704 0044 0532 0130 00; 手机 13812345678 身份证 11010519491231002X") == \
        "iban [IBAN]; 手机 [PHONE] 身份证 [ID]"
    assert mask_pii("") == "" and mask_pii("no digits here") == "no digits here"


@pytest.mark.skipif(not FPB.is_file(), reason=f"Financial PhraseBank is not at {FPB}")
def test_financial_phrasebank_survives():
    sentences = [line.rsplit("@", 1)[0] for line in FPB.read_text(encoding="utf-8").splitlines() if line.strip()]
    contact = [s for s in sentences if CONTACT.search(s)]
    plain = [s for s in sentences if not CONTACT.search(s)]
    changed = [s for s in plain if mask_pii(s) != s]
    masked = [s for s in contact if "[PHONE]" in mask_pii(s)]
    print(f"\nFinancial PhraseBank (AllAgree): {len(plain) - len(changed)}/{len(plain)} sentences without contact "
          f"data unchanged; {len(masked)}/{len(contact)} contact sentences masked")
    assert not changed, changed[:5]
    assert len(masked) == len(contact) and len(contact) >= 8
