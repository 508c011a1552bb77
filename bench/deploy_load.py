"""The production line under load: README's gunicorn command, started for real, measured over loopback.

    python bench/deploy_load.py [--clients 50] [--duration 20] [--cadres 200] [--workers 4]

Over the graph in ``$GANXUN_HOME`` (``scripts/run`` builds the sample: 2,000 cadres), this starts the
production line exactly as README.md's 生产部署 line gives it (``gunicorn -c gunicorn.conf.py 'api:create_app()'``)
on a free 127.0.0.1 port, waits until every worker's ``/api/ready`` answers 200, and measures:

- per-worker resident memory after warm-up (``VmRSS`` in ``/proc/<pid>/status``; target ≤ 800 MB);
- the time of the first intent recommendation after ready (target ≤ 2 s);
- the cadre overview page's server time, p50 over repeated loads (``Server-Timing``; target ≤ 150 ms);
- the paginated course list and recommendations under ``--clients`` keep-alive clients: req/s, p50, p99;
- 5xx answers over a bounded burst of search, intent recommendation and export requests (target 0);
- the cross-worker visibility delay after an import: from the import's answer until every worker lists the
  new course (the version check runs at most every 0.25 s per worker).

Every loop is bounded by ``--duration`` or a count; only 127.0.0.1 is contacted; the server is stopped at the
end.  The import adds one course (``course:bench-visibility``) to the graph in ``$GANXUN_HOME`` — run it on a
copy if that matters.  Accounts for the run live in a temporary database.  :class:`ProductionLine` is also
what ``tests/test_deploy.py`` starts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kg.config import REPO_ROOT  # noqa: E402

HOST = "127.0.0.1"
WORKER_HEADER = "X-Ganxun-Worker"


# ─── the production line ───
def readme_command(readme: Path = REPO_ROOT / "README.md") -> list[str]:
    """The gunicorn command of README.md's 生产部署 line (without its ``GANXUN_SECRET_KEY=…`` prefix), so what is
    tested and measured is what the README tells people to run."""
    for line in readme.read_text(encoding="utf-8").splitlines():
        if "生产部署" in line:
            match = re.search(r"`([^`]*gunicorn[^`]*)`", line)
            if match:
                words = shlex.split(match.group(1))
                return [w for w in words if not re.match(r"^[A-Z_]+=", w)]
    raise SystemExit("README.md 中没有找到“生产部署”的 gunicorn 命令")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def worker(self) -> int:
        return int(self.headers.get(WORKER_HEADER.lower(), "0"))

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def server_ms(self) -> float | None:
        match = re.search(r"app;dur=([\d.]+)", self.headers.get("server-timing", ""))
        return float(match.group(1)) if match else None


def request(port: int, method: str, path: str, token: str | None = None, body: bytes | None = None,
            headers: dict[str, str] | None = None, conn: http.client.HTTPConnection | None = None,
            timeout: float = 60) -> Answer:
    """One HTTP request on loopback (on ``conn`` when given, else on a new connection closed afterwards)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(HOST, port, timeout=timeout)
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        if own:
            conn.close()


def multipart(files: dict[str, tuple[str, bytes]], form: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body (for the import upload) and its content type."""
    boundary = secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in (form or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ProductionLine:
    """README's production command as a subprocess on a free loopback port, with ``env`` added to ours."""

    def __init__(self, env: dict[str, str], workers: int = 4, log: Path | None = None) -> None:
        self.port = free_port()
        self.workers = workers
        self.command = readme_command()
        self.env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GANXUN_SECRET_KEY": secrets.token_hex(16),
                    "GANXUN_BIND": f"{HOST}:{self.port}", "GANXUN_WORKERS": str(workers), **env}
        self.log = log or Path(tempfile.mkstemp(prefix="ganxun-gunicorn-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self) -> ProductionLine:
        if shutil.which(self.command[0]) is None:
            raise RuntimeError(f"找不到 {self.command[0]}：请先安装依赖（scripts/test 会安装）")
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def wait_ready(self, timeout: float = 300) -> dict[int, dict[str, Any]]:
        """Poll ``/api/ready`` on fresh connections until every worker has answered 200; their bodies by pid.

        Raises RuntimeError (with the server's log) when the server exits or the time runs out."""
        ready: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"gunicorn 已退出：\n{self.log_tail()}")
            try:
                answer = request(self.port, "GET", "/api/ready", timeout=10)
            except OSError:
                time.sleep(0.2)
                continue
            if answer.status == 200:
                ready[answer.worker] = answer.json()
                if len(ready) >= self.workers:
                    return ready
            else:
                time.sleep(0.05)
        raise RuntimeError(f"{timeout:g} 秒内只有 {len(ready)} 个工作进程就绪：\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The pids of the master's worker processes (its children)."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> ProductionLine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def import_jsonl(port: int, token: str, rows: list[dict[str, Any]]) -> Answer:
    content = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("utf-8")
    body, media = multipart({"files": ("bench.jsonl", content)})
    return request(port, "POST", "/api/admin/import", token, body, {"Content-Type": media})


def visibility_delay(port: int, token: str, course_id: str, name: str, workers: int,
                     timeout: float = 10) -> dict[int, float]:
    """Seconds from now until each worker's course list (searched for ``name``) first includes ``course_id``,
    over fresh connections, so the workers take turns answering."""
    started = time.monotonic()
    seen: dict[int, float] = {}
    path = "/api/catalogue/courses?per_page=100&q=" + urllib.parse.quote(name)
    while len(seen) < workers and time.monotonic() - started < timeout:
        answer = request(port, "GET", path, token)
        if answer.status == 200 and any(i["id"] == course_id for i in answer.json()["items"]):
            seen.setdefault(answer.worker, time.monotonic() - started)
    return seen


# ─── load ───
@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


def run_load(port: int, token: str, paths: list[str], clients: int, seconds: float, seed: int) -> Tally:
    tally, lock = Tally(), threading.Lock()
    stop_at = time.monotonic() + seconds
    rng = random.Random(seed)

    def client(order: list[str]) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        mine: list[float] = []
        statuses: dict[int, int] = {}
        k = 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                answer = request(port, "GET", order[k % len(order)], token, headers={"Connection": "keep-alive"}, conn=conn)
            except (OSError, http.client.HTTPException):
                statuses[-1] = statuses.get(-1, 0) + 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                continue
            k += 1
            mine.append(time.perf_counter() - started)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
        conn.close()
        with lock:
            tally.latencies.extend(mine)
            for code, n in statuses.items():
                tally.statuses[code] = tally.statuses.get(code, 0) + n

    threads = []
    for _ in range(clients):
        order = paths[:]
        rng.shuffle(order)
        threads.append(threading.Thread(target=client, args=(order,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def burst(port: int, token: str, paths: list[str], clients: int = 8) -> dict[int, int]:
    """Every path once, spread over ``clients`` threads; status counts (-1: no answer)."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(paths)

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                path = queue.pop()
            try:
                code = request(port, "GET", path, token, timeout=120).status
            except (OSError, http.client.HTTPException):
                code = -1
            with lock:
                statuses[code] = statuses.get(code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def main() -> None:
    from api.accounts import Accounts
    from kg.config import Settings
    from kg.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0, help="每个负载端点的测量秒数")
    parser.add_argument("--cadres", type=int, default=200, help="轮流请求的干部人数")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--overview-loads", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    settings = Settings.from_env()
    with open_store(settings=settings) as store:
        cadres = [n.id for _, n in zip(range(args.cadres), store.nodes("Cadre"))]
        counts = store.node_counts()
        topic = next(iter(store.nodes("Topic"))).id
        institution = next(iter(store.nodes("Institution"))).id
    if not cadres:
        raise SystemExit("图谱中没有干部：请先运行 scripts/run（或 python -m corpora generate && python -m kg build）")

    tmp = Path(tempfile.mkdtemp(prefix="ganxun-deploy-"))
    accounts = Accounts(tmp / "accounts.db", password_method="pbkdf2:sha256:1000")
    token = accounts.issue_token(accounts.create_user("bench", secrets.token_urlsafe(12), "admin"))[0]
    line = ProductionLine({"GANXUN_ACCOUNTS_DB": str(tmp / "accounts.db"), "GANXUN_JOBS_DB": str(tmp / "jobs.db")},
                          workers=args.workers, log=tmp / "gunicorn.log")
    rows: list[tuple[str, str, str]] = []
    try:
        started = time.monotonic()
        line.start()
        ready = line.wait_ready(timeout=900)
        slowest = {part: max(body["已加载"].get(part, 0) for body in ready.values())
                   for part in next(iter(ready.values()))["已加载"]}
        rows.append(("全部工作进程就绪（/api/ready 200）", f"{time.monotonic() - started:.1f} 秒",
                     f"{len(ready)} 个进程；各部分最长用时（秒）：" + "、".join(f"{k} {v:.1f}" for k, v in slowest.items())))
        rss = {pid: rss_mb(pid) for pid in line.worker_pids()}
        rows.append(("每个工作进程常驻内存（预热后）", f"最大 {max(rss.values()):.0f} MB", "目标 ≤ 800 MB；"
                     + "、".join(f"{v:.0f}" for v in rss.values())))

        intent = urllib.parse.quote("提高应对突发事件和舆情的能力")
        first = time.perf_counter()
        answer = request(line.port, "GET", f"/api/cadres/{cadres[0]}/recommendations?k=10&intent={intent}", token)
        rows.append(("就绪后第一次带意向的推荐", f"{1000 * (time.perf_counter() - first):.0f} ms",
                     f"状态 {answer.status}；目标 ≤ 2 s"))

        server_ms = [ms for c in cadres[: args.overview_loads]
                     if (ms := request(line.port, "GET", f"/cadre/?cadre={urllib.parse.quote(c)}", token).server_ms)
                     is not None]
        rows.append(("学员概览页服务器用时 p50", f"{statistics.median(server_ms):.0f} ms",
                     f"{len(server_ms)} 次；p90 {percentile(server_ms, 0.9):.0f} ms；目标 ≤ 150 ms"))

        course_pages = [f"/api/catalogue/courses?page={p}&per_page=20" for p in range(1, 21)]
        recs = [f"/api/cadres/{c}/recommendations?k=10" for c in cadres]
        run_load(line.port, token, recs + course_pages, args.clients, 3, args.seed)  # warm every worker's caches
        for name, paths in (("课程列表（分页）", course_pages), ("推荐", recs)):
            tally = run_load(line.port, token, paths, args.clients, args.duration, args.seed)
            lat = tally.latencies
            errors = sum(n for code, n in tally.statuses.items() if code != 200)
            rows.append((f"{name}，{args.clients} 个客户端", f"{len(lat) / args.duration:.1f} 次/秒",
                         f"p50 {1000 * percentile(lat, 0.5):.0f} ms，p99 {1000 * percentile(lat, 0.99):.0f} ms，"
                         f"非 200：{errors}"))

        queries = ["乡村振兴", "基层治理与网格化", "数字政府建设", "党史学习教育", "应急管理与风险防范", "生态文明"]
        burst_paths = ([f"/api/search?q={urllib.parse.quote(q)}" for q in queries]
                       + [f"/api/search?q={urllib.parse.quote(q)}&topic={urllib.parse.quote(topic)}" for q in queries]
                       + [f"/api/cadres/{c}/recommendations?k=10&intent={urllib.parse.quote(queries[i % len(queries)])}"
                          for i, c in enumerate(cadres[:24])]
                       + [f"/api/cadres/{c}/learning-path?intent={intent}" for c in cadres[:6]]
                       + ["/api/admin/export?format=turtle&type=Course", "/api/admin/export?format=jsonld&type=Textbook",
                          "/api/admin/export?format=turtle", "/api/admin/export?format=turtle&include_personal=true"])
        statuses = burst(line.port, token, burst_paths)
        fives = sum(n for code, n in statuses.items() if code >= 500 or code < 0)
        rows.append(("检索 / 意向推荐 / 导出突发请求中的 5xx", f"{fives} / {len(burst_paths)}",
                     "状态：" + "、".join(f"{c}×{n}" for c, n in sorted(statuses.items()))))

        course = {"type": "Course", "id": "course:bench-visibility", "name": "可见性基准课程",
                  "description": "用于测量导入后各工作进程看到新课程所需时间的课程。", "courseType": "专题课",
                  "deliveryMode": "网络", "teachingMethod": ["讲授"], "lecturerType": "专职教师", "hours": 1,
                  "isCase": False, "status": "已发布", "version": 1, "dateCreated": "2026-01-05",
                  "dateModified": "2026-01-05", "covers": [topic], "offeredBy": institution}
        imported = import_jsonl(line.port, token, [course])
        seen = visibility_delay(line.port, token, course["id"], course["name"], args.workers)
        rows.append(("导入后各工作进程看到新课程", f"最慢 {max(seen.values()) * 1000:.0f} ms" if seen else "未看到",
                     f"导入状态 {imported.status}；{len(seen)} / {args.workers} 个进程；目标 ≤ 1 s"))
    finally:
        line.stop()

    print(f"\n图谱：{counts.get('Cadre', 0):,} 名干部、{counts.get('Course', 0):,} 门课程；命令：{' '.join(line.command)}"
          f"（{args.workers} 个工作进程）；CPU {os.cpu_count()} 核；负载每项 {args.duration:g} 秒")
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'项目':<{width}} {'结果':<18} 说明")
    for name, value, note in rows:
        print(f"{name:<{width}} {value:<18} {note}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
