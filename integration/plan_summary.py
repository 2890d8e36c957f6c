"""The user's acceptance document (`docs/acceptance/zero-downtime-node-addition-test-plan.md`, kept
verbatim) as a checklist.

`Plan` keeps every check a test makes under the box of the document's "Test Summary Template" it
belongs to, and renders that template filled in: a box is ticked (☑) when it has at least one
check and all of its checks passed; a box nothing was checked for stays ☐. Checks never raise
(`step` records an exception as a failed check and lets the test go on), so one failure does not
hide the others and the summary is always complete.

`PLANS` holds every Plan made in this pytest process; conftest.py prints them at the end of the
run (`pytest_terminal_summary`), so the summary is in the CI output whether the tests pass or not.
"""

from __future__ import annotations

import datetime
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

# The template's boxes, in its order: (heading, [(key, label)]). Labels are the document's text.
SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Scenario 1: Basic 3→4 Node Expansion", [
        ("s1.added", "Node 4 added successfully"),
        ("s1.members", "All nodes report 4 members"),
        ("s1.no_election", "No leader election"),
        ("s1.no_errors", "No errors"),
    ]),
    ("Scenario 2: Partition Rebalancing", [
        ("s2.triggered", "Rebalancer triggered within 30s"),
        ("s2.reassigned", "Partitions reassigned correctly"),
        ("s2.node4", "Node 4 included in assignments"),
        ("s2.no_errors", "No errors"),
    ]),
    ("Scenario 3: Leader Stability", [
        ("s3.leader", "Leader unchanged during addition"),
        ("s3.no_elections", "No election messages"),
        ("s3.term", "Raft term stable"),
    ]),
    ("Scenario 4: Zero Client Impact", [
        ("s4.no_errors", "No producer errors"),
        ("s4.no_loss", "No message loss"),
        ("s4.latency", "Latency stable"),
    ]),
]
FAILURE_TESTS: list[tuple[str, str]] = [
    ("f.duplicate", "Duplicate node rejected"),
    ("f.follower", "Follower add rejected"),
    ("f.invalid", "Invalid address rejected"),
]
LABELS = {key: label for _h, boxes in SECTIONS for key, label in boxes} | dict(FAILURE_TESTS)
RULE = "=" * 53  # the template's rule
BLANK = "_" * 39  # the template's empty Notes line

PLANS: list["Plan"] = []


@dataclass
class Check:
    box: str
    what: str
    ok: bool
    detail: str = ""


class Step:
    """What a `with plan.step(...)` block may add to its check: a detail shown when it fails."""

    def __init__(self):
        self.detail = ""


class Plan:
    def __init__(self, tester: str, version: str = "v2.6.0"):
        self.tester = tester
        self.version = version
        self.date = datetime.date.today().isoformat()
        self.checks: list[Check] = []
        self.perf: dict[str, Optional[float]] = {"before": None, "after": None}  # msg/s
        self.notes: list[str] = []
        PLANS.append(self)

    # ---- recording ------------------------------------------------------------------

    def check(self, box: str, what: str, ok: bool, detail: str = "") -> bool:
        assert box in LABELS, f"unknown box {box!r}"
        self.checks.append(Check(box, what, bool(ok), "" if ok else detail))
        return bool(ok)

    @contextmanager
    def step(self, box: str, what: str) -> Iterator[Step]:
        """A check that passes when its block finishes; an exception fails it (recorded with its
        message) and is swallowed, so the test records the rest before it asserts."""
        s = Step()
        try:
            yield s
        except Exception as exc:  # noqa: BLE001 - the failure is the record
            self.check(box, what, False, f"{type(exc).__name__}: {exc}"[:800] + (f" ({s.detail})" if s.detail else ""))
        else:
            self.check(box, what, True)

    def note(self, line: str) -> None:
        self.notes.append(line)

    # ---- judging --------------------------------------------------------------------

    def ticked(self, box: str) -> bool:
        mine = [c for c in self.checks if c.box == box]
        return bool(mine) and all(c.ok for c in mine)

    def unticked(self) -> list[str]:
        return [f"{LABELS[k]} ({k})" for k in LABELS if not self.ticked(k)]

    def failures(self, since: int = 0) -> list[Check]:
        return [c for c in self.checks[since:] if not c.ok]

    def mark(self) -> int:
        return len(self.checks)

    def assert_passed_since(self, mark: int) -> None:
        """Fails the calling test if any check it recorded (after `mark`) failed, naming them."""
        bad = self.failures(mark)
        assert not bad, "failed checks of the test plan:\n" + "\n".join(
            f"- [{LABELS[c.box]}] {c.what}: {c.detail}" for c in bad)

    # ---- the template, filled in ----------------------------------------------------------

    def render(self) -> str:
        def box(key: str) -> str:
            return f"  {'☑' if self.ticked(key) else '☐'} {LABELS[key]}"

        def rate(key: str) -> str:
            v = self.perf[key]
            return "_____" if v is None else f"{v:.0f}"

        passed = not self.unticked()
        out = [RULE, "Priority 2 Testing Summary", RULE, "",
               f"Test Date: {self.date}", f"Tester: {self.tester}", f"Version: {self.version}", ""]
        for heading, boxes in SECTIONS:
            out += [heading] + [box(k) for k, _l in boxes] + [""]
        out += ["Performance:", f"  Before (3 nodes): {rate('before')} msg/s",
                f"  After (4 nodes):  {rate('after')} msg/s", ""]
        out += ["Failure Tests:"] + [box(k) for k, _l in FAILURE_TESTS] + [""]
        out += [f"Overall: {'☑' if passed else '☐'} PASS  {'☐' if passed else '☑'} FAIL", ""]
        notes = list(self.notes) + [f"✗ [{LABELS[c.box]}] {c.what}: {c.detail[:400]}" for c in self.failures()]
        out += ["Notes:"] + (notes or [BLANK, BLANK])
        return "\n".join(out)
