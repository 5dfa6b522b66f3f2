"""SMS length: which texts stay in GSM-7, and where the segment limits fall."""

import pytest

from notifications.segments import count_segments, sms_encoding


@pytest.mark.parametrize(
    "char",
    ["å", "ä", "ö", "Å", "Ä", "Ö", "é", "É", "ü", "Ü", "ñ", "Ñ", "à", "@", "£", "$", "_", "§", "¿", "¡", "\n"],
)
def test_characters_of_the_gsm_basic_set_keep_the_text_in_gsm7(char):
    assert sms_encoding(f"Hej {char}") == "GSM-7"
    assert count_segments(char).units == 1


@pytest.mark.parametrize("char", ["^", "{", "}", "\\", "[", "~", "]", "|", "€", "\f"])
def test_characters_of_the_extension_table_cost_two_septets(char):
    length = count_segments(char)
    assert (length.encoding, length.units, length.characters) == ("GSM-7", 2, 1)


@pytest.mark.parametrize(
    "char",
    ["á", "í", "ó", "ú", "ê", "‘", "’", "“", "”", "–", "—", "…", "ç", "ő", "😀"],
)
def test_one_character_outside_gsm7_turns_the_whole_text_into_ucs2(char):
    assert sms_encoding(f"Hej {char}") == "UCS-2"


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment"),
    [
        ("", "GSM-7", 0, 0, 160),
        ("a" * 160, "GSM-7", 160, 1, 160),
        ("a" * 161, "GSM-7", 161, 2, 153),
        ("a" * 306, "GSM-7", 306, 2, 153),
        ("a" * 307, "GSM-7", 307, 3, 153),
        ("ö" * 160, "GSM-7", 160, 1, 160),
        ("€" * 80, "GSM-7", 160, 1, 160),
        ("€" * 81, "GSM-7", 162, 2, 153),
        # 152 septets, then a two-septet character that does not fit in the first segment's 153
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2, 153),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3, 153),
        ("’" * 70, "UCS-2", 70, 1, 70),
        ("’" * 71, "UCS-2", 71, 2, 67),
        ("’" * 134, "UCS-2", 134, 2, 67),
        ("’" * 135, "UCS-2", 135, 3, 67),
        ("😀" * 35, "UCS-2", 70, 1, 70),
        ("😀" * 36, "UCS-2", 72, 2, 67),
        # an emoji (a surrogate pair) is not split between two segments
        ("a" * 66 + "😀" + "a" * 4, "UCS-2", 72, 2, 67),
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 134, 3, 67),
    ],
)
def test_segment_count(text, encoding, units, segments, per_segment):
    length = count_segments(text)
    assert (length.encoding, length.units, length.segments, length.per_segment) == (
        encoding,
        units,
        segments,
        per_segment,
    )


def test_an_emoji_counts_as_one_character_but_two_units():
    length = count_segments("Hej 😀")
    assert (length.characters, length.units) == (5, 6)


def test_a_swedish_reminder_fits_one_sms_but_a_pasted_apostrophe_makes_it_cost_more():
    text = "Hej! Påminnelse från Välfärdsteknik: bekräfta era kontaktuppgifter för krisrutinen senast fredag. Länk: https://krisrutin.kommun.example.se/k/AbC123"
    plain = count_segments(text)
    assert (plain.encoding, plain.segments) == ("GSM-7", 1)
    pasted = count_segments(text.replace("Hej!", "Hej! Det’s"))
    assert (pasted.encoding, pasted.segments) == ("UCS-2", 3)
