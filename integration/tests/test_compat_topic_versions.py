"""kafka-python's admin client at the newest CreateTopics (v7) and DeleteTopics (v6) versions.

KafkaAdminClient picks the highest version both sides know, so it now sends CreateTopics v7
(which answers with the topic's partitions, replication factor, configs and id, KIP-525) and
DeleteTopics v6 (which names topics or gives their ids).
"""

from __future__ import annotations

import uuid

from kafka.protocol.admin import CreateTopicsRequest, DeleteTopicsRequest

from client_helpers import admin
from harness import unique_topic, wait_until


def topic_ids(a, names: list[str]) -> dict[str, uuid.UUID]:
    """Topic name -> id (Metadata v10+) for the names that exist (the client reports ids as text)."""
    return {t["name"]: uuid.UUID(str(t["topic_id"])) for t in a.describe_topics(names)
            if t.get("error_code", 0) == 0 and t["name"] in names}


def test_admin_client_creates_and_deletes_by_name_and_id_at_the_newest_versions(broker):
    a = admin(broker.bootstrap)
    try:
        versions = a._manager.broker_version_data
        assert versions.api_version(CreateTopicsRequest) == 7
        assert versions.api_version(DeleteTopicsRequest) == 6
        names = [unique_topic("compat-versions-a"), unique_topic("compat-versions-b"),
                 unique_topic("compat-versions-c")]
        created = a.create_topics({n: {"num_partitions": 2, "replication_factor": 1,
                                       "configs": {"retention.ms": "3600000"}} for n in names})
        wait_until(lambda: len(topic_ids(a, names)) == 3, 15, f"{names} in metadata")
        ids = topic_ids(a, names)
        for t in created["topics"]:
            assert t["error_code"] == 0 and t["name"] in names, t
            assert (t["num_partitions"], t["replication_factor"]) == (2, 1), t
            assert uuid.UUID(str(t["topic_id"])) == ids[t["name"]], t
            retention = t["configs"]["retention.ms"]
            assert (retention["value"], retention["config_source"]) == ("3600000", "DYNAMIC_TOPIC_CONFIG"), retention
            assert t["configs"]["cleanup.policy"]["config_source"] == "DEFAULT_CONFIG", t["configs"]["cleanup.policy"]

        by_name, by_id, kept = names
        deleted = a.delete_topics([by_name, ids[by_id]])
        results = {(r["name"], uuid.UUID(str(r["topic_id"]))): r["error_code"] for r in deleted["topics"]}
        assert results == {(by_name, ids[by_name]): 0, (by_id, ids[by_id]): 0}, deleted
        wait_until(lambda: set(topic_ids(a, names)) == {kept}, 15, f"only {kept} left")
        assert set(a.list_topics()) & set(names) == {kept}
    finally:
        a.close()
