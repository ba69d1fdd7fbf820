"""The README and the docs say what is there: every file they name exists, every `calirl` command they show parses,
every `make` target is in the Makefile, and the README stays short enough for a newcomer."""

import re
from pathlib import Path

import pytest

from calirl_lite.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_OUTPUTS = ("results/", "runs/", "data/cache", ".venv", "dist/", "~/", "$", "DIR/", "RUN")
"""paths the kit or the set-up makes (or placeholders), not files of the repository"""


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def named_paths(page: Path) -> set[str]:
    """Repository paths a page names: its links, code spans with a slash, and the root's files (bare names such as
    `lab.md` are what a run writes into its folder)."""
    text = page.read_text()
    links = {m for m in re.findall(r"\]\(([^)\s#]+)\)", text) if not m.startswith("http")}
    root_file = r"^([A-Z]+\.(md|cff)|LICENSE|Makefile|pyproject\.toml|requirements(-dev)?\.txt|environment\.yml|conftest\.py)$"
    spans = {s for s in code_spans(text) if " " not in s and (re.search(r"\w/", s) or re.match(root_file, s))}
    spans = {s for s in spans if not s.startswith(("-", "http", "git+", "calirl_lite.")) and "…" not in s and "<" not in s}
    return {p for p in links | spans if not p.startswith(RUN_OUTPUTS) and "*" not in p and "{" not in p}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_a_page_names_exists(page):
    missing = [p for p in sorted(named_paths(page)) if not (page.parent / p).exists() and not (ROOT / p).exists()]
    assert not missing, f"{page.name} names files that are not in the repository: {missing}"


def commands(text: str) -> list[list[str]]:
    """Every `calirl …` command in a page's code spans and code blocks, split into argv (a|b|c alternatives each)."""
    lines = code_spans(text) + re.findall(r"^(?:\.venv/bin/)?calirl [^\n#]*", text, re.M)
    out = []
    for line in lines:
        line = re.sub(r"^(CALIRL_\w+=\S+ )*(\.venv/bin/)?", "", line.strip()).replace("\\|", "|")
        if not line.startswith("calirl ") or "<" in line:
            continue
        argv = [w for w in line.split()[1:] if w not in ("[--json]",)]
        argv = [w.strip("[]") for w in argv if not w.startswith("…")]
        if argv and "|" in argv[-1] and not argv[-1].startswith("-"):
            out += [argv[:-1] + [alt] for alt in argv[-1].split("|")]
        else:
            out.append(argv)
    return out


def test_every_calirl_command_the_readme_shows_parses():
    shown = commands((ROOT / "README.md").read_text())
    assert len(shown) >= 12
    for argv in shown:
        try:
            build_parser(argv).parse_args(argv)
        except SystemExit as e:
            pytest.fail(f"README: `calirl {' '.join(argv)}` does not parse (exit {e.code})")


def test_every_make_target_the_readme_names_is_in_the_makefile():
    readme = (ROOT / "README.md").read_text()
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", readme))
    assert {"reproduce", "test", "setup"} <= named and named <= targets, named - targets


def test_the_readme_starts_with_a_two_command_quickstart_and_stays_short():
    readme = (ROOT / "README.md").read_text()
    words = len(readme.split())
    assert words <= 1500, f"the README has {words} words (at most 1,500)"
    quick = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make reproduce", "make test"]
    assert readme.index("## Quickstart") < readme.index("## Three ways in")
    assert "shared/" not in readme and "DESIGN.md" not in readme  # nothing outside the repository


def test_the_teaching_guide_has_its_parts_and_every_minute_measured():
    guide = (ROOT / "docs" / "teaching.md").read_text()
    for part in ("## Learning goals", "## Minutes per notebook", "## A 90-minute lesson", "## Two sessions", "## Discussion questions",
                 "## Common mistakes"):
        assert part in guide, part
    assert "{{" not in guide  # no number left to fill in
    rows = re.findall(r"^\| (0\d) · .*?\| ([\d.]+) min \| ([\d.]+) min \|", guide, re.M)
    assert [r[0] for r in rows] == [p.name[:2] for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    assert all(float(klass) <= 2 for _, klass, _ in rows), rows
