"""The summary `bash integration/run.sh` prints is the user's own "Test Summary Template", read from
the copy of the acceptance document kept in the repository
(`docs/acceptance/zero-downtime-node-addition-test-plan.md`). Pure Python, no broker.

An unfilled `Plan` must render the template line for line, except the three lines a run fills
in (date, tester, the Overall verdict). A label edited in `plan_summary.py`, or a document
replaced by another version, makes this fail.
"""

from __future__ import annotations

import re

import pytest

import plan_summary
from harness import REPO_ROOT

pytestmark = pytest.mark.no_broker

PLAN_DOC = REPO_ROOT / "docs" / "acceptance" / "zero-downtime-node-addition-test-plan.md"


def template_lines() -> list[str]:
    text = PLAN_DOC.read_text(encoding="utf-8")
    m = re.search(r"^## Test Summary Template\n\n```\n(.*?)\n```", text, re.S | re.M)
    assert m, f"{PLAN_DOC}: no fenced block under '## Test Summary Template'"
    return m.group(1).splitlines()


def unfilled_plan() -> plan_summary.Plan:
    plan = plan_summary.Plan(tester="t")
    # Not a run's plan: keep it out of the summaries conftest.py prints at the end.
    plan_summary.PLANS.remove(plan)
    return plan


def test_an_unfilled_plan_renders_the_documents_template():
    want = template_lines()
    got = unfilled_plan().render().splitlines()
    filled = {"Test Date: ": "Test Date: ___________", "Tester: ": "Tester: ___________",
              "Overall: ": "Overall: ☐ PASS  ☐ FAIL"}
    blanked = [next((v for k, v in filled.items() if line.startswith(k)), line) for line in got]
    assert blanked == want


def test_the_document_is_the_version_the_summary_names():
    text = PLAN_DOC.read_text(encoding="utf-8")
    assert text.startswith("# Priority 2: Zero-Downtime Node Addition - Testing Plan\n")
    version = re.search(r"^\*\*Version\*\*: (\S+)$", text, re.M)
    assert version and version.group(1) == unfilled_plan().version
