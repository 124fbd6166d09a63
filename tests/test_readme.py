"""README.md: the two set-up commands first, sections of at most a screen, a map of every top-level folder."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREEN_LINES = 40


def sections(text: str) -> dict[str, int]:
    """Lines per `## ` section."""
    found, name = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            name = line[3:]
            found[name] = 0
        elif name is not None:
            found[name] += 1
    return found


def test_it_starts_with_the_two_setup_commands():
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL).group(1).splitlines()
    assert [line.split()[:2] for line in block] == [["make", "demo"], ["make", "test"]]


def test_every_section_fits_a_screen():
    long = {name: lines for name, lines in sections((ROOT / "README.md").read_text()).items() if lines > SCREEN_LINES}
    assert long == {}


def test_the_layout_maps_every_top_level_folder():
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout") :]
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "docs"}
    folders -= {"out", "results", "records", "node_modules"}
    tracked = {f for f in folders if (ROOT / f / "__init__.py").exists() or f in {"dashboards", "tests"}}
    assert {f for f in tracked if f"`{f}/" not in layout} == set()


def test_sections_count_the_lines_under_them():
    assert sections("# T\nintro\n## A\n1\n2\n## B\n1\n") == {"A": 2, "B": 1}
