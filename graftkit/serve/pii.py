"""Mask personal data in text: e-mail addresses, phone numbers, card and account numbers, ID numbers.

Phone numbers are found by ``phonenumbers`` (Google's libphonenumber) with ``Leniency.VALID``: a
candidate must be a real number plan entry of one of :data:`PHONE_REGIONS`, so dates (``2024-01-15``,
``15.01.2024``), amounts, percentages and years survive. Structured numbers are confirmed by their
checksums through ``python-stdnum``: cards by Luhn, IBANs by ISO 13616 mod 97 and the country's length and
format (upper or lower case), Chinese resident IDs by ISO 7064 MOD 11-2 with a real birth date and place,
US SSNs by the SSA's allocation rules. The two formats
libphonenumber cannot validate without context get their own rule: US local numbers (``555-1234``) and
Chinese mobile numbers (``1[3-9]`` + 9 digits).

presidio-analyzer's pattern recognisers do the same checks, but importing it loads spaCy (tens of
seconds at every server start), so graftkit uses the underlying library directly.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Callable, Iterator

from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import iban, luhn
from stdnum.cn import ric
from stdnum.us import ssn

#: number plans tried for numbers written without a country code (with one, any country matches)
PHONE_REGIONS = ("US", "GB", "DE", "FR", "CN", "IN", "FI", "ES", "IT", "NL")

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,3})?(?![A-Za-z0-9])")
CARD = re.compile(r"(?<![\d+-])(?:\d[ -]?){12,18}\d(?![\d-])")
CN_RESIDENT_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
US_SSN = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")
CN_MOBILE = re.compile(r"(?<![\d+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
US_LOCAL_PHONE = re.compile(r"(?<![\d.,-])[2-9]\d{2}[-.]\d{4}(?![\d.,-]|\.\d)")
# a stretch that could hold a phone number (7+ digits with separators); libphonenumber only sees these,
# because running its matcher over whole texts costs milliseconds per region
PHONE_CANDIDATE = re.compile(r"(?<![\w])[+(]?\d[\d ().\-/]{5,24}\d(?!\w)")
_DIGITS = re.compile(r"\d")
DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
DATED = re.compile(r"(?:19|20)\d{2} ?[-./] ?[01]?\d ?[-./] ?[0-3]?\d|[0-3]?\d ?[-./] ?[01]?\d ?[-./] ?(?:19|20)\d{2}")


def _is_card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _is_iban(text: str) -> bool:
    return iban.is_valid(text)  # mod 97 and the country's own length and BBAN format


def _is_cn_resident_id(text: str) -> bool:
    if not ric.is_valid(text):  # MOD 11-2, a real date and a known birth place
        return False
    return 1900 <= ric.get_birth_date(text).year <= dt.date.today().year


def _is_us_ssn(m: re.Match) -> bool:
    return ssn.is_valid(m.group())  # SSA allocation rules and the known advertising / test numbers


def _looks_like_other_number(text: str) -> bool:
    """Valid in some number plan, but written as a date or as an ID with a check digit (``0101138-5``)."""
    return bool(DATE.fullmatch(text) or DATED.search(text) or re.search(r"[-/]\d$", text)
                or re.fullmatch(r"\d+[.,]\d+", text))  # a decimal number


def _phone_spans(text: str, taken: list[tuple[int, int, str]]) -> Iterator[tuple[int, int]]:
    for cand in PHONE_CANDIDATE.finditer(text):
        if (len(_DIGITS.findall(cand.group())) < 7 or DATE.fullmatch(cand.group())
                or any(cand.start() < e and s < cand.end() for s, e, _ in taken)):
            continue  # too few digits for a phone number, a date, or already masked as something else
        regions = (None,) if cand.group().startswith("+") else PHONE_REGIONS
        for region in regions:
            for m in PhoneNumberMatcher(cand.group(), region, leniency=Leniency.VALID):
                if not _looks_like_other_number(m.raw_string):
                    yield cand.start() + m.start, cand.start() + m.end
    for pattern in (CN_MOBILE, US_LOCAL_PHONE):
        for m in pattern.finditer(text):
            yield m.start(), m.end()


def _spans(pattern: re.Pattern, text: str, valid: Callable[[re.Match], bool]) -> Iterator[tuple[int, int]]:
    return ((m.start(), m.end()) for m in pattern.finditer(text) if valid(m))


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping ``(start, end, tag)`` spans of personal data in ``text``, in order.

    Where detectors overlap, the earlier-listed (more specific) one wins: e-mail, IBAN, card, ID, phone.
    """
    taken: list[tuple[int, int, str]] = []  # filled while the (lazy) detectors below run
    detectors = (
        ("EMAIL", _spans(EMAIL, text, lambda m: True)),
        ("IBAN", _spans(IBAN, text, lambda m: _is_iban(m.group()))),
        ("CARD", _spans(CARD, text, lambda m: _is_card(m.group()))),
        ("ID", _spans(CN_RESIDENT_ID, text, lambda m: _is_cn_resident_id(m.group()))),
        ("ID", _spans(US_SSN, text, _is_us_ssn)),
        ("PHONE", _phone_spans(text, taken)),
    )
    for tag, spans in detectors:
        for start, end in spans:
            if not any(start < e and s < end for s, e, _ in taken):
                taken.append((start, end, tag))
    return sorted(taken)


def mask_pii(text: str) -> str:
    """``text`` with personal data replaced by [EMAIL], [IBAN], [CARD], [ID] and [PHONE]."""
    if not text:
        return text
    out, at = [], 0
    for start, end, tag in find_pii(text):
        out += [text[at:start], f"[{tag}]"]
        at = end
    return "".join(out) + text[at:]


__all__ = ["PHONE_REGIONS", "find_pii", "mask_pii"]
