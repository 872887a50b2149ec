"""The documentation works: README.md and the topic pages under docs/.

* Every ```python block of README.md and docs/*.md runs, in order, one
  namespace per page. A block whose first line is `# needs: ...` names data,
  hardware or a process state the test lacks, and is only compiled. A page
  holding the comment `<!-- docs-test: own-process ... -->` runs in a fresh
  Python process (e.g. `get_strategy` splitting the CPU before TensorFlow
  starts).
* Relative links (pages, benchmark tables, images) point at files that
  exist, and anchors into Markdown files at headings that exist.
* No page names the command forms that the console scripts replaced, and
  every command line of a ```sh block names a command of this project
  with flags that command defines (its `--help` lists them).
* `mkdocs build --strict` succeeds (skipped where mkdocs is not installed),
  and the API reference documents every public name of the packages.
"""

import functools
import importlib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import unicodedata

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
ALL_MARKDOWN = [*PAGES, *sorted((DOCS / "api").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
SHELL = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
OWN_PROCESS = "<!-- docs-test: own-process"
# python -m forms of the commands that are console scripts now (kcp-*).
OLD_COMMANDS = re.compile(
    r"python -m keras_cnnpractice\.(predict|analyze|doctor|tune|launch|"
    r"augment_preview|data\.pack|custom_ops)\b")
# Packages of the API reference: docs/api/<page>.md documents every name
# in the package's __all__.
API_PAGES = {"layers": "keras_cnnpractice.layers",
             "models": "keras_cnnpractice.models",
             "analysis": "keras_cnnpractice.analysis",
             "custom_ops": "keras_cnnpractice.custom_ops",
             "data": "keras_cnnpractice.data",
             "transfer": "keras_cnnpractice.transfer",
             "training": "keras_cnnpractice.training",
             "strategies": "keras_cnnpractice.strategies"}
# Run one page's blocks (a JSON list of [name, code]) in a fresh process.
RUNNER = """
import json, sys
namespace = {"__name__": sys.argv[2]}
for name, code in json.load(open(sys.argv[1])):
    exec(compile(code, name, "exec"), namespace)
"""


def blocks(page):
    return BLOCK.findall(page.read_text())


def page_id(page):
    return page.stem if page.parent == DOCS else page.name


def test_there_are_pages_with_examples():
    assert all(page.is_file() for page in PAGES)
    assert sum(bool(blocks(page)) for page in PAGES) >= 10


@pytest.mark.parametrize("page", PAGES, ids=[page_id(p) for p in PAGES])
def test_examples_run(page, tmp_path, monkeypatch):
    # Files the examples write (exports, checkpoints, FastConv2D's
    # measurements) go to a temporary folder.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KCP_CONV_CACHE", str(tmp_path / "conv_cache.json"))
    runnable = []
    for number, code in enumerate(blocks(page)):
        name = f"{page.name} block {number}"
        compiled = compile(code, name, "exec")  # every block compiles
        if not code.startswith("# needs:"):
            runnable.append((name, code, compiled))
    if OWN_PROCESS in page.read_text():
        script = tmp_path / "blocks.json"
        script.write_text(json.dumps([[name, code] for name, code, _ in runnable]))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, str(script), f"docs_{page.stem}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
        return
    namespace = {"__name__": f"docs_{page.stem}"}
    for _, _, compiled in runnable:
        exec(compiled, namespace)  # noqa: S102 - our own docs


def _plain(heading):
    """A heading's text as rendered: no code marks, link targets or
    emphasis."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return heading.replace("`", "").replace("*", "").strip()


def _anchors(page):
    """Anchors that Python-Markdown's toc (mkdocs) and GitHub both give the
    page's headings (only the ones where the two agree)."""
    found = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        if not line.startswith("#"):
            continue
        text = _plain(line.lstrip("#"))
        ascii_text = unicodedata.normalize("NFKD", text).encode(
            "ascii", "ignore").decode()
        mkdocs = re.sub(r"[-\s]+", "-",
                        re.sub(r"[^\w\s-]", "", ascii_text).strip().lower())
        github = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        if mkdocs == github:
            found.add(mkdocs)
    return found


@pytest.mark.parametrize("page", ALL_MARKDOWN,
                         ids=[str(p.relative_to(ROOT)) for p in ALL_MARKDOWN])
def test_links_resolve(page):
    text = FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: no heading with anchor #{anchor} "
                          f"(the same under mkdocs and GitHub) in {file.name}")
    assert not broken, f"{page.name}:\n" + "\n".join(broken)


def test_no_replaced_command_forms():
    found = [f"{page.relative_to(ROOT)}: {match.group(0)}"
             for page in ALL_MARKDOWN
             for match in OLD_COMMANDS.finditer(page.read_text())]
    assert not found, "use the kcp-* commands or python -m " \
        "keras_cnnpractice.cli.NAME:\n" + "\n".join(found)


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    missing = []
    for page, package in API_PAGES.items():
        html = (site / "api" / page / "index.html").read_text()
        for name in importlib.import_module(package).__all__:
            if not re.search(rf'id="[\w.]*\.{re.escape(name)}"', html):
                missing.append(f"{package}.{name} (docs/api/{page}.md)")
    assert not missing, "not in the API reference:\n" + "\n".join(missing)


# Commands whose arguments after a bare `--` are another command's flags.
PASSES_FLAGS_TO = {"kcp-tune": "kcp-train"}


def _invocations(words):
    """`(command, flag names)` of each of this project's commands in one
    shell line (`kcp-launch ... -- python train.py ...` holds two)."""
    found, command = [], None
    for word in words:
        name = pathlib.PurePath(word).name
        if name.startswith("kcp-") or name == "train.py":
            command = "kcp-train" if name == "train.py" else name
            found.append((command, []))
        elif word == "--" and command:
            command = PASSES_FLAGS_TO.get(command)
            if command:
                found.append((command, []))
        elif command and word.startswith("--") and len(word) > 2:
            found[-1][1].append(word[2:].partition("=")[0])
    return found


@functools.cache
def _help(command):
    module = command[len("kcp-"):].replace("-", "_")
    result = subprocess.run(
        [sys.executable, "-m", f"keras_cnnpractice.cli.{module}", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command} --help: {result.stderr[-2000:]}"
    return result.stdout


def test_shell_examples_use_real_commands_and_flags():
    wrong = []
    for page in PAGES:
        for block in SHELL.findall(page.read_text()):
            pending = ""
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                try:  # a quoted string may span lines
                    words = shlex.split(pending + line, comments=True)
                except ValueError:
                    pending += line + "\n"
                    continue
                pending = ""
                for command, names in _invocations(words):
                    text = _help(command)
                    wrong += [f"{page.name}: {command} --{name}"
                              for name in names
                              if f"--{name}:" not in text and
                              f"--[no]{name.removeprefix('no')}:" not in text]
    assert not wrong, "flags the commands do not define:\n" + "\n".join(wrong)
