"""A real import process killed in the middle of writing leaves the store exactly as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kg.build import build_graph
from kg.config import REPO_ROOT
from kg.store.embedded import EmbeddedStore
from tests.conftest import FIXTURE_CORPUS

ROWS = 60_000
WAL_BYTES_BEFORE_KILL = 2_000_000


def _big_corpus(path: Path) -> Path:
    """Many valid courses: their write takes long enough to be interrupted half-way."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(ROWS):
            row = {
                "type": "Course", "id": f"course:bulk-{i:06d}", "name": f"批量导入课程 {i}",
                "description": "用于检验导入过程被中途终止时存储保持原状的批量课程记录。" * 3,
                "courseType": "网络课程", "deliveryMode": "网络", "teachingMethod": ["讲授"], "lecturerType": "专家学者",
                "hours": 1, "isCase": False, "status": "已发布", "version": 1, "dateCreated": "2024-01-01",
                "dateModified": "2024-01-01", "covers": ["topic:newtech"], "offeredBy": "inst:t-province-school",
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def test_killing_a_real_import_mid_write_keeps_the_previous_state(tmp_path, ontology):
    db = tmp_path / "graph.db"
    with EmbeddedStore(db, text_labels=["Course"]) as store:
        build_graph(store, [FIXTURE_CORPUS], ontology)
        before_nodes, before_edges = list(store.nodes()), list(store.edges())
    wal = Path(f"{db}-wal")
    corpus = _big_corpus(tmp_path / "bulk.jsonl")
    env = os.environ | {"GANXUN_DB": str(db), "GANXUN_HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "kg", "import", str(corpus)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if wal.exists() and wal.stat().st_size > WAL_BYTES_BEFORE_KILL:
            break
        time.sleep(0.01)
    assert process.poll() is None, "导入在被终止前已结束，未能检验中途终止：" + process.stderr.read().decode()[-500:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    with EmbeddedStore(db, text_labels=["Course"]) as store:
        assert list(store.nodes()) == before_nodes
        assert list(store.edges()) == before_edges
        assert store.get_node("course:bulk-000000") is None
