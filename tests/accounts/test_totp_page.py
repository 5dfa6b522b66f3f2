"""The TOTP enrolment page: the key as text and as a QR code of its otpauth URI, named for screen
readers, on a page no browser or proxy stores."""

from __future__ import annotations

import html as html_module
import re

import pyotp
import segno

from tests.accounts.test_security_totp import enrol
from tests.conftest import log_in

QR_NAME = "QR-kod för att lägga till Krisrutin i din autentiseringsapp"
QUIET_ZONE = 4  # modules of light border the QR code standard asks for


def the_svg(html: str) -> str:
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(svgs) == 1, f"expected one inline SVG, found {len(svgs)}"
    return svgs[0]


def dark_modules(svg: str) -> tuple[int, set[tuple[int, int]]]:
    """The symbol drawn by an SVG QR code (segno's form: one path of horizontal strokes, one module
    wide, through the middle of each row): its width in modules and its dark modules (x, y)."""
    width, height = (float(n) for n in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg).groups())
    assert width == height
    path = re.search(r'<path[^>]*\bstroke="#000"[^>]*\bd="([^"]+)"', svg).group(1)
    x = y = 0.0
    dark = set()
    for command, first, second in re.findall(r"([MmHhVv])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        elif command == "h":
            run = float(first)
            dark.update((int(x + i), int(y)) for i in range(int(run)))
            x += run
        else:
            raise AssertionError(f"unexpected path command {command!r} in the QR code")
    return int(width), dark


def symbol_of(uri: str) -> tuple[int, set[tuple[int, int]]]:
    """What the QR code of ``uri`` must show: segno's symbol for it inside the quiet zone."""
    matrix = segno.make_qr(uri).matrix
    dark = {(x + QUIET_ZONE, y + QUIET_ZONE) for y, row in enumerate(matrix) for x, bit in enumerate(row) if bit}
    return len(matrix) + 2 * QUIET_ZONE, dark


def otpauth_uri(secret: str, username: str) -> str:
    """The key URI format an authenticator app reads, every parameter stated."""
    return f"otpauth://totp/Krisrutin%3A{username}?secret={secret}&issuer=Krisrutin&algorithm=SHA1&digits=6&period=30"


def test_the_enrolment_page_shows_the_key_and_a_qr_code_of_its_otpauth_uri(client, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    page = client.get("/account/totp")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"  # it shows a secret
    secret = html.split('<code id="totp-secret">')[1].split("</code>")[0]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # for those who cannot scan, to type in
    uri = otpauth_uri(secret, username)
    assert f"<code>{html_module.escape(uri)}</code>" in html

    svg = the_svg(html)
    opening = svg.split(">", 1)[0]
    assert 'role="img"' in opening and f'aria-label="{QR_NAME}"' in opening
    assert dark_modules(svg) == symbol_of(uri)
    # the comparison tells keys apart: the same user's URI with another key is another symbol
    other = otpauth_uri(pyotp.random_base32(), username)
    assert dark_modules(svg) != symbol_of(other)


def test_the_page_keeps_its_key_while_enrolling_and_shows_no_key_once_enrolled(client, clock, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    first = the_svg(client.get("/account/totp").get_data(as_text=True))
    assert the_svg(client.get("/account/totp").get_data(as_text=True)) == first  # a reload shows the same key
    secret = enrol(client, clock)
    assert secret not in (html := client.get("/account/totp").get_data(as_text=True))
    assert "<svg" not in html and "otpauth://" not in html


def test_the_qr_codes_name_is_english_on_the_english_page(client, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    svg = the_svg(client.get("/account/totp", query_string={"lang": "en"}).get_data(as_text=True))
    assert 'aria-label="QR code to add Krisrutin to your authenticator app"' in svg.split(">", 1)[0]
