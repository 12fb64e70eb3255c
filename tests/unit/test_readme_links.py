"""The README is the front page: every link in it leads to a file of the repository.

The docs site checks its own links (`make docs`); the README is outside it, so this test does.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def readme_links() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [link for link in LINK.findall(text) if "://" not in link]


def test_the_readme_links_to_the_docs() -> None:
    links = readme_links()
    assert "docs/index.md" in links
    assert sum(link.startswith("docs/") for link in links) >= 10


@pytest.mark.parametrize("link", readme_links())
def test_a_readme_link_leads_to_a_file(link: str) -> None:
    path = link.split("#", 1)[0]
    assert (ROOT / path).is_file(), f"README.md links to {link}, which does not exist"
