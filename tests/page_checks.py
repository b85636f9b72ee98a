"""Checks on the HTML pages run_all.py writes: their links, images, findings and link texts."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote


class Page(HTMLParser):
    """Links, images, findings paragraphs and the text of each link of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.links, self.images, self.findings, self.anchors = [], [], [], []
        self._in_findings, self._href = False, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs["href"])
            self._href = attrs["href"]
            self.anchors.append([attrs["href"], ""])
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "p" and attrs.get("class") == "findings":
            self._in_findings = True
            self.findings.append("")

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None
        elif tag == "p":
            self._in_findings = False

    def handle_data(self, data):
        if self._in_findings:
            self.findings[-1] += data
        if self._href is not None:
            self.anchors[-1][1] += data


def assert_resolves(page_path: Path, *, embedded: bool = True) -> Page:
    """Every link of the page is a file beside it; every image an embedded PNG (or, unless ``embedded``, a
    file beside it)."""
    page = Page(page_path.read_text(encoding="utf-8"))
    for href in page.links:
        assert "://" not in href and (page_path.parent / unquote(href)).is_file(), href
    for src in page.images:
        if not embedded and not src.startswith("data:"):
            assert (page_path.parent / unquote(src)).is_file(), src
            continue
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    return page
