"""The repository explains itself: no doc, example or test points at a file outside it, and every
relative markdown link in the docs leads to a file that exists. Pure Python, no broker.

A reader of a fresh clone (or CI) has only the repository. A relative path that climbs above
the repository root, or an absolute path into some machine's filesystem (a workspace, a home or
temporary directory), names a file that reader does not have.

Scanned: README.md and everything under docs/, examples/, integration/ and .ci/ except the
directories tools generate locally (listed in GENERATED, all in .gitignore). Reported:
- an absolute path whose first component is a top-level directory of a Linux or macOS
  filesystem (FS_ROOTS), except the few in `allowed` (each says why). HTTP paths such as
  `/admin/health` or `/metrics` start with no such directory and are not paths on disk;
- a path in the home directory (written with a tilde or HOME);
- a relative path with a `..` segment that, resolved from the file's own directory, leaves
  the repository or names nothing in it (a path written for a checkout beside other folders,
  such as a sibling directory of the repository, resolves inside it but to nothing);
- in docs/ and README.md, a relative markdown link (inline or reference-style, anchors and
  queries ignored) to a file or directory that does not exist in the repository. Nothing is
  skipped: a file another branch is still adding is named as code text until it lands.
URLs (`scheme://...`) are removed before a line is scanned; their paths are the server's.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import REPO_ROOT

pytestmark = pytest.mark.no_broker

SCANNED = ["README.md", "docs", "examples", "integration", ".ci"]
# Installed or generated on a developer's machine, never committed (see .gitignore).
GENERATED = {"node_modules", ".venv", "__pycache__", ".pytest_cache"}
# The user's acceptance document, kept verbatim. Its commands use scratch files in the
# temporary directory that its own steps create (cp, cat >, --data-dir) and delete (Cleanup).
ACCEPTANCE_DOC = "docs/acceptance/zero-downtime-node-addition-test-plan.md"

# Top-level directories of a Linux (FHS) or macOS filesystem.
FS_ROOTS = ("work", "home", "tmp", "root", "usr", "opt", "var", "etc", "mnt", "srv", "dev", "proc",
            "sys", "bin", "sbin", "lib", "lib64", "boot", "run", "media", "snap", "nix", "Users",
            "Volumes", "private", "Library", "Applications")
# What may follow a path's first character: stops at whitespace, quotes, brackets and the
# punctuation that ends a path in prose, code and shell.
PATH_CHARS = r"[^\s`'\"()<>\[\]{},;|]"
# An absolute path: not the continuation of a longer word or path (`a/tmp/x`, `$(pwd)/tmp`).
ABSOLUTE = re.compile(r"(?<![\w./~)}$\-])/(?:%s)(?![\w.\-])%s*" % ("|".join(FS_ROOTS), PATH_CHARS))
HOME = re.compile(r"(?<![\w$])(?:~|\$HOME|\$\{HOME\})/%s*" % PATH_CHARS)
# A run of path characters; those with a `..` segment are resolved.
PATH_TOKEN = re.compile(r"[\w.\-/*~]+")
URL = re.compile(r"\b(?!file:)[A-Za-z][\w+.\-]*://\S*")
# Linux's per-process files (an f-string `/proc/{pid}/stat`), read by harness.py and the bench
# scripts for a broker's RSS, CPU time and (per thread, under `task`) context switches: the path
# token stops at the brace, the rest follows it.
PROC_FILE = re.compile(r"\{[\w.]+\}/(?:stat|status|task)\b")
# Built from parts, so that this file passes its own scan.
USR_BIN_ENV = "/".join(("", "usr", "bin", "env"))
TMP_DIR = "/".join(("", "tmp", ""))
PROC_DIR = "/".join(("", "proc", ""))

INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?", re.M)
FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
SCHEME = re.compile(r"^[A-Za-z][\w+.\-]*:")


@dataclass(frozen=True)
class Finding:
    path: str  # repository-relative, with '/'
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text!r}: {self.why}"


def allowed(m: re.Match, rel: str, line: str, lineno: int) -> bool:
    """The absolute paths that are not a reference to another machine's files."""
    token = m.group(0)
    if token == "/dev/null":  # the null device, in shell redirections
        return True
    if token == USR_BIN_ENV and lineno == 1 and line.startswith("#!"):  # a script's shebang
        return True
    if rel.endswith(".py") and token == PROC_DIR and PROC_FILE.match(m.string, m.end()):
        return True
    if rel == ACCEPTANCE_DOC and token.startswith(TMP_DIR):
        return True
    return False


def climbs_out(token: str, rel: str, root: Path) -> str | None:
    """Why relative `token`, read from the directory of file `rel`, is not a path in the
    repository at `root`; None if it is one."""
    resolved = os.path.normpath(os.path.join(os.path.dirname(rel), token))
    if resolved == ".." or resolved.startswith("../"):
        return "climbs out of the repository"
    if not (root / resolved).exists():
        return f"resolves to {resolved}, which is not in the repository"
    return None


def outside_refs(text: str, rel: str, root: Path = REPO_ROOT) -> list[Finding]:
    """Every path in `text` (the content of repository file `rel`) that points outside it."""
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        scan = URL.sub(" ", line.replace("file://", " "))
        for m in ABSOLUTE.finditer(scan):
            if not allowed(m, rel, line, lineno):
                found.append(Finding(rel, lineno, m.group(0), "absolute path outside the repository"))
        for m in HOME.finditer(scan):
            found.append(Finding(rel, lineno, m.group(0), "path in a home directory"))
        for m in PATH_TOKEN.finditer(scan):
            token = m.group(0)
            if ".." not in token.split("/"):
                continue
            # After a shell expansion (`$(dirname "$0")/..`) the path is relative to the script.
            if token.startswith("/") and m.start() > 0 and scan[m.start() - 1] in ")}":
                token = token.lstrip("/")
            why = "absolute path with .." if token.startswith("/") else climbs_out(token, rel, root)
            if why:
                found.append(Finding(rel, lineno, m.group(0), why))
    return found


def _blank(m: re.Match) -> str:
    """Keeps the newlines of a removed code block so line numbers stay right."""
    return re.sub(r"[^\n]", " ", m.group(0))


def link_targets(text: str) -> list[tuple[int, str]]:
    """(line, target) of every markdown link outside code blocks and code spans."""
    prose = CODE_SPAN.sub(_blank, FENCE.sub(_blank, text))
    found = []
    for rx in (INLINE_LINK, REFERENCE_LINK):
        for m in rx.finditer(prose):
            found.append((prose.count("\n", 0, m.start()) + 1, m.group(1)))
    return sorted(found)


def broken_links(text: str, rel: str, root: Path = REPO_ROOT) -> list[Finding]:
    """Every relative link in markdown file `rel` whose target is not a file or directory
    inside `root`."""
    found = []
    for lineno, target in link_targets(text):
        if SCHEME.match(target) or target.startswith("#"):
            continue
        path = re.split(r"[#?]", target, maxsplit=1)[0]
        if not path:
            found.append(Finding(rel, lineno, target, "empty link"))
            continue
        base = "" if path.startswith("/") else os.path.dirname(rel)
        resolved = os.path.normpath(os.path.join(base, path.lstrip("/").replace("%20", " ")))
        if resolved == ".." or resolved.startswith("../"):
            found.append(Finding(rel, lineno, target, "link leaves the repository"))
        elif not (root / resolved).exists():
            found.append(Finding(rel, lineno, target, f"link target {resolved} does not exist"))
    return found


def scanned_files(root: Path = REPO_ROOT) -> list[str]:
    files = []
    for top in SCANNED:
        if (root / top).is_file():
            files.append(top)
            continue
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = sorted(d for d in dirnames if d not in GENERATED)
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            files += [f"{rel_dir}/{f}" for f in sorted(filenames) if not f.endswith(".pyc")]
    return files


def read_text(rel: str) -> str | None:
    """The file's text, or None for a binary file (an image has no paths to check)."""
    data = (REPO_ROOT / rel).read_bytes()
    return None if b"\0" in data else data.decode("utf-8", errors="replace")


def is_doc(rel: str) -> bool:
    return rel.endswith(".md") and (rel == "README.md" or rel.startswith("docs/"))


# ---- the repository ---------------------------------------------------------------------------


def test_the_scan_covers_the_docs_examples_and_suite():
    files = scanned_files()
    for must in ["README.md", "docs/architecture.md", ACCEPTANCE_DOC, "examples/single-node.toml",
                 "integration/harness.py", "integration/tests/test_docs_self_contained.py", ".ci/run"]:
        assert must in files


def test_no_file_points_outside_the_repository():
    found = [f for rel in scanned_files() if (text := read_text(rel)) is not None
             for f in outside_refs(text, rel)]
    assert not found, "paths outside the repository:\n" + "\n".join(map(str, found))


def test_every_relative_link_in_the_docs_resolves():
    docs = [rel for rel in scanned_files() if is_doc(rel)]
    assert "docs/architecture.md" in docs and "README.md" in docs
    found = [f for rel in docs for f in broken_links(read_text(rel) or "", rel)]
    assert not found, "broken links:\n" + "\n".join(map(str, found))


# ---- the checker itself --------------------------------------------------------------------------

# Built from parts so that this file does not itself contain the paths it must catch.
DESIGN_UP = "/".join(["..", "shared", "DESIGN.md"])
WORK_ABS = "/".join(["", "work", "shared", "x"])
UP = ".."
SHEBANG = "#!" + "/".join(["", "usr", "bin", "env"]) + " bash\n"


def test_the_checker_reports_a_climb_out_and_an_absolute_path():
    sample = f"(see `{DESIGN_UP}` for the plan)\nthe spec is in {WORK_ABS} beside it\n"
    found = outside_refs(sample, "docs/architecture.md")
    assert [(f.line, f.text) for f in found] == [(1, DESIGN_UP), (2, WORK_ABS)], found


def test_the_checker_reports_other_machines_paths():
    tmp = "/".join(["", "tmp", "build-main.log"])
    home = "/".join(["", "home", "me", "notes.md"])
    tilde = "/".join(["~", ".cargo", "config.toml"])
    up = "/".join(["..", "..", "..", "elsewhere"])
    sample = f"tail {tmp}\nsee [notes]({home})\ncp {tilde} .\ncd {up}\n"
    found = outside_refs(sample, "integration/tests/x.py")
    assert [f.text for f in found] == [tmp, home, tilde, up], found
    # The acceptance document's scratch files are allowed there, and only there.
    assert outside_refs(f"tail {tmp}", ACCEPTANCE_DOC) == []
    assert outside_refs(f"tail {tmp}", "docs/getting-started.md") != []


def test_the_checker_leaves_urls_http_paths_and_inside_paths_alone():
    sample = "\n".join([
        "curl http://localhost:10001/admin/health and https://example.com/tmp/x.md",
        f"GET /admin/partitions, /metrics and /admin/rebalance; see {UP}/README.md",
        "cmd >/dev/null 2>&1; cd \"$(dirname \"$0\")/..\"",
        "data in data/node-1 and target/release/chronik-server; 248..=251; wait...",
    ])
    assert outside_refs(sample, "docs/operations.md") == []
    assert outside_refs(SHEBANG, ".ci/run") == []
    assert outside_refs("x\n" + SHEBANG, ".ci/run") != []  # a shebang is line 1


def test_the_link_checker_reports_missing_and_escaping_targets(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "operations.md").write_text("x")
    (tmp_path / "README.md").write_text("x")
    sample = "\n".join([
        f"[ops](operations.md#admin-api) [home]({UP}/README.md) [web](https://docs.rs/ractor) [top](#x)",
        "[gone](console.md)",
        "```", "[in a fence](nowhere.md)", "```",
        f"`[in a span](nowhere.md)` and [out]({UP}/{UP}/outside.md)",
        "[ref]: grafana/dashboard.json",
    ])
    found = broken_links(sample, "docs/getting-started.md", root=tmp_path)
    assert [(f.line, f.text) for f in found] == [
        (2, "console.md"), (6, f"{UP}/{UP}/outside.md"), (7, "grafana/dashboard.json")], found


# ---- README ----------------------------------------------------------------------------------


def test_the_readme_shows_exactly_its_two_commands():
    """README.md starts a broker and runs every test; everything else is a link to docs/."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    assert blocks == ["```bash\ncargo run --release --bin chronik-server -- start\n```",
                      "```bash\nbash integration/run.sh\n```"]
    assert "[docs/getting-started.md](docs/getting-started.md)" in text
