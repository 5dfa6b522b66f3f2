"""The dependency audit (tools/dependency_audit.py) against a local HTTP server that answers as
PyPI's JSON API does: per-version documents where the index has them, 404 where it has not."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools.dependency_audit import main

ADVISORY = {
    "id": "PYSEC-2099-1",
    "aliases": ["CVE-2099-0001", "GHSA-xxxx-yyyy-zzzz"],
    "fixed_in": ["2.0.1"],
    "withdrawn": None,
}


class FakeIndex:
    def __init__(self):
        self.documents: dict[str, dict] = {}
        self.requests: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                index.requests.append(self.path)
                document = index.documents.get(self.path)
                body = json.dumps(document).encode() if document is not None else b'{"message": "Not Found"}'
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def project(self, name, newest, vulnerabilities=()):
        self.documents[f"/pypi/{name}/json"] = {"info": {"version": newest}, "vulnerabilities": list(vulnerabilities)}

    def release(self, name, version, vulnerabilities=()):
        self.documents[f"/pypi/{name}/{version}/json"] = {
            "info": {"version": version},
            "vulnerabilities": list(vulnerabilities),
        }


@pytest.fixture
def index():
    fake = FakeIndex()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def run(tmp_path, capsys, index_url, text, *extra):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(text, encoding="utf-8")
    status = main([str(requirements), "--index-url", index_url, *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_vulnerable_pin_fails_the_audit_and_names_the_advisory_and_its_fix(tmp_path, capsys, index):
    index.release("flask", "3.1.3")
    index.release("libfoo", "2.0.0", [ADVISORY])
    status, out, _ = run(tmp_path, capsys, index.url, "# pinned\nflask==3.1.3\nlibfoo==2.0.0\n")
    assert status == 1
    assert "VULNERABLE libfoo 2.0.0: PYSEC-2099-1 (CVE-2099-0001, GHSA-xxxx-yyyy-zzzz); fixed in: 2.0.1" in out
    assert "2 checked" in out and "1 known vulnerabilities" in out


def test_without_per_version_documents_the_newest_release_advisories_apply_to_a_newest_pin(tmp_path, capsys, index):
    """This machine's index: /pypi/<name>/<version>/json is 404, /pypi/<name>/json answers."""
    index.project("libfoo", "2.0.0", [ADVISORY])
    index.project("clean", "1.0")
    status, out, _ = run(tmp_path, capsys, index.url, "libfoo==2.0.0\nclean==1.0\n")
    assert status == 1
    assert "PYSEC-2099-1" in out
    assert "/pypi/libfoo/2.0.0/json" in index.requests  # the exact document was asked for first


def test_withdrawn_advisories_do_not_fail(tmp_path, capsys, index):
    index.release("libfoo", "2.0.0", [{**ADVISORY, "withdrawn": "2099-02-01T00:00:00Z"}])
    status, out, _ = run(tmp_path, capsys, index.url, "libfoo==2.0.0\n")
    assert status == 0
    assert "0 known vulnerabilities" in out


def test_an_older_pin_without_advisory_data_is_listed_as_not_checked_and_fails_only_when_strict(
    tmp_path, capsys, index
):
    index.project("oldlib", "3.0", [])
    index.project("extras-lib", "1.2")
    text = "oldlib==2.9\nextras-lib[fast]==1.2 ; python_version >= '3.10'\n"
    status, out, _ = run(tmp_path, capsys, index.url, text)
    assert status == 0
    assert "not checked: oldlib 2.9 (newest release is 3.0" in out
    assert "1 checked" in out and "1 not checked" in out
    status, _, _ = run(tmp_path, capsys, index.url, text, "--strict")
    assert status == 1


def test_an_unreachable_index_is_not_a_pass(tmp_path, capsys):
    status, _, err = run(tmp_path, capsys, "http://127.0.0.1:9", "flask==3.1.3\n")
    assert status == 2
    assert "did not run" in err


def test_an_unpinned_requirement_is_refused_with_its_line(tmp_path, capsys, index):
    status, _, err = run(tmp_path, capsys, index.url, "flask==3.1.3\nrequests>=2\n")
    assert status == 2
    assert "requirements.txt:2: not pinned with '=='" in err
