"""Reading a node's GET /metrics through the official Prometheus parser, so a format error
fails the test that scraped it.

- `scrape(admin_url)`       every sample, parsed (`prometheus_client.parser`).
- `value(samples, name, **labels)`  the value of the one sample named `name` whose labels
                            include `labels` (None when there is none; two is an error).
- `total(samples, name, **labels)`  the sum over the matching samples (0 when there are none).

Sample names are as exported (`chronik_requests_total`, `..._bucket`); the parser's family
names drop a counter's `_total`, so tests look at samples.
"""

from __future__ import annotations

from typing import Optional

import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def parse(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def scrape(admin_url: str) -> list[Sample]:
    r = requests.get(f"{admin_url}/metrics", timeout=10)
    assert r.status_code == 200, f"/metrics answered {r.status_code}: {r.text[:500]}"
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    return parse(r.text)


def matching(samples: list[Sample], name: str, /, **labels: str) -> list[Sample]:
    want = {k: str(v) for k, v in labels.items()}
    return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in want.items())]


def value(samples: list[Sample], name: str, /, **labels: str) -> Optional[float]:
    found = matching(samples, name, **labels)
    assert len(found) <= 1, f"{len(found)} samples of {name} {labels}: {found}"
    return found[0].value if found else None


def total(samples: list[Sample], name: str, /, **labels: str) -> float:
    return sum(s.value for s in matching(samples, name, **labels))
