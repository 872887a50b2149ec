"""Every Python block of the topic pages under docs/ runs, in order, one
namespace per page (a block whose first line is `# needs: ...` names data
or hardware the test machine lacks, and is only compiled)."""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
PAGES = sorted(DOCS.glob("*.md"))


def blocks(page):
    return BLOCK.findall(page.read_text())


def test_there_are_pages_with_examples():
    assert PAGES and any(blocks(page) for page in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_examples_run(page, tmp_path, monkeypatch):
    # Files the examples write (exports, FastConv2D's measurements) go to
    # a temporary folder.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KCP_CONV_CACHE", str(tmp_path / "conv_cache.json"))
    namespace = {"__name__": f"docs_{page.stem}"}
    for number, code in enumerate(blocks(page)):
        compiled = compile(code, f"{page.name} block {number}", "exec")
        if not code.startswith("# needs:"):
            exec(compiled, namespace)  # noqa: S102 - our own docs
