"""Audit the pinned dependencies against PyPI's vulnerability data (the pip-audit equivalent that
`make test` runs).

Why not pip-audit itself: pip-audit asks PyPI for ``/pypi/<name>/<version>/json`` (or OSV's API).
This machine reaches PyPI through an index that serves ``/pypi/<name>/json`` but answers 404 for
the per-version document and cannot reach api.osv.dev, so pip-audit reports every package as
"not found", checks nothing and still passes. This tool reads the same advisory data (PyPI's
``vulnerabilities`` field, fed by the OSV database) from the documents that answer:

1. ``/pypi/<name>/<version>/json`` when the index serves it (pypi.org does): the advisories that
   affect exactly the pinned version;
2. otherwise ``/pypi/<name>/json``, whose advisories are those of the newest release: they are the
   pinned version's when the pin *is* the newest release.

A pin older than the newest release, with no per-version document, cannot be checked: it is
listed as "not checked" (an error with ``--strict``), as pip-audit lists what it could not audit.
Without ``--strict`` a new upstream release does not turn CI red overnight, but the output says
which pins are then unaudited.

Exit status: 0 no known vulnerability; 1 a vulnerability (each printed with its id, aliases and the
versions that fix it); 2 the index could not be read (the audit did not run, which is not a pass).

    python -m tools.dependency_audit requirements.txt [--index-url https://pypi.org] [--strict]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

DEFAULT_INDEX = "https://pypi.org"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#\\]+)")


class IndexUnavailable(Exception):
    """The package index could not be read; the audit did not run."""


@dataclass
class Finding:
    name: str
    version: str
    checked: bool = False
    newest: str | None = None
    vulnerabilities: list[dict] = field(default_factory=list)


def read_pins(path: str) -> list[tuple[str, str]]:
    """(name, version) for every ``name==version`` line; anything unpinned is an error, since an
    unpinned dependency cannot be audited (and the project pins everything)."""
    pins: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith(("#", "-")):
                continue
            match = PIN.match(line)
            if match is None:
                raise ValueError(f"{path}:{number}: not pinned with '==': {line}")
            pins.append((match.group(1), match.group(2)))
    return pins


def _get_json(url: str, *, attempts: int = 3) -> dict | None:
    """The JSON document at url, None on 404; IndexUnavailable when it cannot be read."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (http(s) only: checked in main)
                return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            problem = f"HTTP {error.code}"
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
            problem = str(error)
        if attempt + 1 < attempts:
            time.sleep(0.5 * (attempt + 1))
    raise IndexUnavailable(f"{url}: {problem}")


def _open(vulnerabilities: list[dict] | None) -> list[dict]:
    return [v for v in vulnerabilities or [] if not v.get("withdrawn")]


def audit_one(index_url: str, name: str, version: str) -> Finding:
    finding = Finding(name, version)
    document = _get_json(f"{index_url}/pypi/{name}/{version}/json")
    if document is not None:
        finding.checked = True
        finding.vulnerabilities = _open(document.get("vulnerabilities"))
        return finding
    document = _get_json(f"{index_url}/pypi/{name}/json")
    if document is None:
        return finding
    finding.newest = document.get("info", {}).get("version")
    if _same_version(finding.newest, version):
        finding.checked = True
        finding.vulnerabilities = _open(document.get("vulnerabilities"))
    return finding


def _same_version(a: str | None, b: str) -> bool:
    if a is None:
        return False
    try:
        from packaging.version import Version

        return Version(a) == Version(b)
    except Exception:  # an unparsable version: compare the text
        return a == b


def audit(pins: list[tuple[str, str]], index_url: str = DEFAULT_INDEX) -> list[Finding]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda pin: audit_one(index_url.rstrip("/"), *pin), pins))


def report(findings: list[Finding], *, strict: bool, out=None) -> int:
    out = out or sys.stdout
    vulnerable = [f for f in findings if f.vulnerabilities]
    unchecked = [f for f in findings if not f.checked]
    for finding in vulnerable:
        for vulnerability in finding.vulnerabilities:
            aliases = ", ".join(vulnerability.get("aliases") or [])
            fixed = ", ".join(vulnerability.get("fixed_in") or []) or "no fixed release"
            out.write(
                f"VULNERABLE {finding.name} {finding.version}: {vulnerability.get('id')}"
                f"{f' ({aliases})' if aliases else ''}; fixed in: {fixed}\n"
            )
    for finding in unchecked:
        reason = f"newest release is {finding.newest}" if finding.newest else "not on the index"
        out.write(f"not checked: {finding.name} {finding.version} ({reason}; no advisory data for this pin)\n")
    checked = len(findings) - len(unchecked)
    count = sum(len(f.vulnerabilities) for f in vulnerable)
    out.write(
        f"dependency audit: {len(findings)} pinned packages, {checked} checked against PyPI's "
        f"vulnerability data, {count} known vulnerabilities, {len(unchecked)} not checked\n"
    )
    if vulnerable:
        return 1
    if strict and unchecked:
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="+")
    parser.add_argument("--index-url", default=DEFAULT_INDEX)
    parser.add_argument("--strict", action="store_true", help="a pin that cannot be checked fails the audit")
    arguments = parser.parse_args(argv)
    if not arguments.index_url.startswith(("https://", "http://")):
        parser.error("--index-url must be an http(s) URL")
    try:
        pins = [pin for path in arguments.requirements for pin in read_pins(path)]
        findings = audit(pins, arguments.index_url)
    except ValueError as error:
        print(f"dependency audit: {error}", file=sys.stderr)
        return 2
    except IndexUnavailable as error:
        print(f"dependency audit did not run: the package index could not be read ({error})", file=sys.stderr)
        return 2
    return report(findings, strict=arguments.strict)


if __name__ == "__main__":
    sys.exit(main())
