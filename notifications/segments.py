"""How many SMS segments a text costs, the way the network counts them.

A text that fits the GSM 03.38 alphabet is sent as GSM-7: 160 septets in one SMS, 153 per
segment once it is split (the rest of each segment carries the concatenation header). One
character outside that alphabet turns the whole text into UCS-2: 70 UTF-16 code units in one
SMS, 67 per segment. Swedish å, ä, ö, Å, Ä, Ö and é are in the GSM alphabet; typographic quotes,
the en dash and accents such as á are not, so a pasted "’" or "–" can triple the cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet, in table order (0x1B, the escape to the extension table, left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The extension table: each character is sent as escape + character, two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE = 160
GSM7_CONCATENATED = 153
UCS2_SINGLE = 70
UCS2_CONCATENATED = 67


@dataclass(frozen=True)
class SmsLength:
    encoding: Encoding
    characters: int  # as a person counts them (code points)
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int  # 0 for an empty text
    per_segment: int  # the limit that applies: 160/153 (GSM-7) or 70/67 (UCS-2)


def sms_encoding(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM 03.38 alphabet or its extension, else UCS-2."""
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENSION:
            return "UCS-2"
    return "GSM-7"


def _unit_sizes(text: str, encoding: Encoding) -> list[int]:
    """Each character's size in units; a character is never split across two segments."""
    if encoding == "GSM-7":
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]  # surrogate pairs (most emoji)


def _pack(sizes: list[int], capacity: int) -> int:
    """Segments needed when whole characters are packed into segments of ``capacity`` units."""
    segments, used = 1, 0
    for size in sizes:
        if used + size > capacity:
            segments += 1
            used = 0
        used += size
    return segments


def count_segments(text: str) -> SmsLength:
    """The encoding, length and number of segments of ``text`` as one SMS."""
    encoding = sms_encoding(text)
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    single, concatenated = (GSM7_SINGLE, GSM7_CONCATENATED) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_CONCATENATED)
    if units == 0:
        segments, per_segment = 0, single
    elif units <= single:
        segments, per_segment = 1, single
    else:
        segments, per_segment = _pack(sizes, concatenated), concatenated
    return SmsLength(encoding=encoding, characters=len(text), units=units, segments=segments, per_segment=per_segment)
