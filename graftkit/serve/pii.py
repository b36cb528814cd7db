"""Mask personal data in text: e-mail addresses, phone numbers, card/account numbers (IBAN) and ID numbers.

Patterns are deliberately broad (a false positive in a log is cheap, a leaked number is not).
Card numbers are confirmed with the Luhn checksum so ordinary long numbers (amounts, years) survive.
"""
from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# US SSN, Chinese resident ID (17 digits + digit/X), generic long digit runs used as account numbers
ID_NUMBER = re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b\d{17}[\dXx]\b|\b\d{9,16}\b")
PHONE = re.compile(r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){2,4}(?![\w.])"
                   r"|(?<![\w.])(?:\+\d{1,3}[ .-]?)?\(\d{1,4}\)[ .-]?\d{2,4}(?:[ .-]\d{2,4}){1,3}(?![\w.])"
                   r"|(?<![\w.])\+\d{8,14}\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match) -> str:
    digits = re.sub(r"\D", "", m.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn(digits) else m.group()


def mask_pii(text: str) -> str:
    """``text`` with personal data replaced by [EMAIL], [IBAN], [CARD], [ID] and [PHONE]."""
    text = EMAIL.sub("[EMAIL]", text)
    text = IBAN.sub("[IBAN]", text)
    text = CARD.sub(_card, text)
    text = ID_NUMBER.sub("[ID]", text)
    return PHONE.sub("[PHONE]", text)
