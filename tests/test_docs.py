"""The manual: mkdocs.yml's site builds with --strict, has every page, and the README's links reach real pages and headings."""

import ast
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def local_links(markdown: str) -> list[tuple[str, str]]:
    """(path, anchor) of each relative link; external links are left out."""
    links = []
    for target in LINK.findall(markdown):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        links.append((path, anchor))
    return links


class Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name == "id")


def html_ids(page: Path) -> set[str]:
    parser = Ids()
    parser.feed(page.read_text())
    return parser.ids


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_a_front_page_with_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) < 250
    assert "./setup.sh && .venv/bin/fl-saliency demo" in text
    assert ".venv/bin/python -m pytest" in text


def test_the_readmes_relative_links_reach_existing_files_and_headings():
    text = README.read_text()
    headings = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    links = local_links(text)
    assert any(path.startswith("docs/") for path, _ in links)
    for path, anchor in links:
        if not path:
            assert anchor in headings, f"README.md#{anchor}"
            continue
        assert (ROOT / path).exists(), path
        if anchor:
            page = (ROOT / path).read_text()
            assert anchor in {github_anchor(h) for h in re.findall(r"^#+ (.+)$", page, re.MULTILINE)}, f"{path}#{anchor}"


def test_github_anchor_matches_githubs_rule():
    assert github_anchor("Errors, interruptions and what is guaranteed") == "errors-interruptions-and-what-is-guaranteed"
    assert github_anchor("Model cards (`fl-saliency export`)") == "model-cards-fl-saliency-export"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra is not installed")
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                           cwd=ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return out


@pytest.mark.slow  # builds the site
def test_the_site_has_every_page_of_the_nav(site):
    pages = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    assert {"index", "commands", "api", "benchmarks", "architecture"} <= set(pages)
    for name in pages:
        html = site / ("index.html" if name == "index" else f"{name}/index.html")
        assert html.exists(), name
    assert (site / "report.png").exists() and (site / "cluster-aws.yaml").exists()


def public_names() -> list[str]:
    """fl_saliency.__all__, read from the source (mkdocstrings renders the names it lists)."""
    tree = ast.parse((ROOT / "fl_saliency" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


@pytest.mark.slow  # builds the site
def test_the_api_page_is_rendered_from_the_package(site):
    ids = html_ids(site / "api" / "index.html")
    assert "fl_saliency" in ids
    missing = [name for name in public_names() if f"fl_saliency.{name}" not in ids]
    assert not missing, f"not on the API page: {missing}"


@pytest.mark.slow  # builds the site
def test_the_readmes_links_into_docs_reach_the_sites_headings(site):
    for path, anchor in local_links(README.read_text()):
        if path.startswith("docs/") and path.endswith(".md") and anchor:
            name = Path(path).stem
            page = site / ("index.html" if name == "index" else f"{name}/index.html")
            assert anchor in html_ids(page), f"{path}#{anchor}"


@pytest.mark.slow  # builds the site
def test_a_broken_anchor_fails_the_strict_build(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[a](other.md#no-such-heading)\n")
    (docs / "other.md").write_text("# Other\n")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())  # the project's settings, strictness included
    config["nav"] = [{"Home": "index.md"}, {"Other": "other.md"}]
    config["plugins"] = [p for p in config["plugins"] if p == "search"]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                           cwd=tmp_path, capture_output=True, text=True)
    assert built.returncode != 0
    assert "no-such-heading" in built.stderr
