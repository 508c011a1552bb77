"""Recommendation requests under concurrent load, over HTTP on loopback, from a second process.

    python bench/api_load.py [--clients 50] [--duration 60] [--warmup 5] [--workers 2] [--threads 8]
                             [--server gunicorn|werkzeug] [--port 0] [--cadres 500]

Starts the service in its own process on 127.0.0.1 (gunicorn with gthread workers, the production set-up,
or the werkzeug development server) over the graph in ``$GANXUN_HOME`` (``scripts/run`` builds the
sample: 2,000 cadres), then this process runs ``--clients`` concurrent keep-alive clients for
``--duration`` seconds, each asking ``GET /api/cadres/<id>/recommendations?k=10`` for cadres taken in a
seeded random order.  Side by side in the same run, the same clients measure a near-empty endpoint
(``GET /api/auth/me``) so the table shows what the recommendation itself costs over HTTP, auth and
JSON.  Printed: requests, throughput, p50 / p90 / p99 / max latency and errors for each, and their ratio.

Only 127.0.0.1 is ever contacted; every loop is bounded by ``--duration``; the server is stopped at the
end.  Accounts for the run live in a temporary database (the service's own accounts are not touched).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.accounts import Accounts  # noqa: E402
from kg.config import REPO_ROOT, Settings  # noqa: E402
from kg.store import open_store  # noqa: E402

HOST = "127.0.0.1"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(kind: str, port: int, env: dict[str, str], workers: int, threads: int) -> subprocess.Popen:
    if kind == "gunicorn" and shutil.which("gunicorn") is None:
        print("gunicorn 不可用，改用 werkzeug 开发服务器", file=sys.stderr)
        kind = "werkzeug"
    if kind == "gunicorn":
        cmd = ["gunicorn", "--worker-class", "gthread", "-w", str(workers), "--threads", str(threads),
               "-b", f"{HOST}:{port}", "--log-level", "warning", "api:create_app()"]
    else:
        cmd = [sys.executable, "-m", "api", "serve", "--host", HOST, "--port", str(port)]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def wait_ready(port: int, token: str, cadre: str, timeout: float = 300) -> None:
    """Until the service answers a recommendation (the first one in each worker loads the snapshot)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=60)
            conn.request("GET", f"/api/cadres/{cadre}/recommendations?k=10", headers={"Authorization": f"Bearer {token}"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("服务在规定时间内没有就绪")


def client_loop(port: int, token: str, paths: list[str], stop_at: float, tally: Tally, lock: threading.Lock) -> None:
    headers = {"Authorization": f"Bearer {token}", "Connection": "keep-alive"}
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    mine: list[float] = []
    errors, statuses, k = 0, {}, 0
    while time.monotonic() < stop_at:
        path = paths[k % len(paths)]
        k += 1
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.status != 200:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            continue
        mine.append(time.perf_counter() - started)
    conn.close()
    with lock:
        tally.latencies.extend(mine)
        tally.errors += errors
        for code, n in statuses.items():
            tally.statuses[code] = tally.statuses.get(code, 0) + n


def run_load(port: int, token: str, paths: list[str], clients: int, seconds: float, seed: int) -> Tally:
    tally, lock = Tally(), threading.Lock()
    stop_at = time.monotonic() + seconds
    rng = random.Random(seed)
    threads = []
    for _ in range(clients):
        order = paths[:]
        rng.shuffle(order)
        threads.append(threading.Thread(target=client_loop, args=(port, token, order, stop_at, tally, lock)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def row(name: str, tally: Tally, seconds: float) -> dict[str, float]:
    lat = tally.latencies
    return {"name": name, "requests": len(lat), "rps": len(lat) / seconds, "p50": 1000 * percentile(lat, 0.5),
            "p90": 1000 * percentile(lat, 0.9), "p99": 1000 * percentile(lat, 0.99),
            "max": 1000 * max(lat) if lat else float("nan"), "mean": 1000 * statistics.fmean(lat) if lat else float("nan"),
            "errors": tally.errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="每个端点的测量秒数")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--server", choices=["gunicorn", "werkzeug"], default="gunicorn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cadres", type=int, default=500, help="轮流请求的干部人数")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    settings = Settings.from_env()
    with open_store(settings=settings) as store:
        cadres = [n.id for _, n in zip(range(args.cadres), store.nodes("Cadre"))]
        counts = store.node_counts()
    if not cadres:
        raise SystemExit("图谱中没有干部：请先运行 scripts/run（或 python -m corpora generate && python -m kg build）")

    tmp = Path(tempfile.mkdtemp(prefix="ganxun-load-"))
    accounts = Accounts(tmp / "accounts.db", password_method="pbkdf2:sha256:1000")
    token = accounts.issue_token(accounts.create_user("bench", secrets.token_urlsafe(12), "admin"))[0]
    port = args.port or free_port()
    env = {**os.environ, "GANXUN_ACCOUNTS_DB": str(tmp / "accounts.db"), "GANXUN_SECRET_KEY": secrets.token_hex(16),
           "PYTHONPATH": str(REPO_ROOT)}
    server = start_server(args.server, port, env, args.workers, args.threads)
    try:
        wait_ready(port, token, cadres[0])
        recs = [f"/api/cadres/{c}/recommendations?k=10" for c in cadres]
        baseline = ["/api/auth/me"]
        run_load(port, token, recs, args.clients, args.warmup, args.seed)  # warm every worker's snapshot
        rows = [row("推荐 GET /api/cadres/{id}/recommendations?k=10",
                    run_load(port, token, recs, args.clients, args.duration, args.seed), args.duration),
                row("对照 GET /api/auth/me", run_load(port, token, baseline, args.clients, args.duration, args.seed),
                    args.duration)]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)

    server_desc = (f"gunicorn gthread {args.workers} 进程 × {args.threads} 线程" if args.server == "gunicorn"
                   else "werkzeug 开发服务器（多线程）")
    print(f"\n图谱：{counts.get('Cadre', 0):,} 名干部、{counts.get('Course', 0):,} 门课程；服务：{server_desc}；"
          f"{args.clients} 个并发客户端（另一进程，127.0.0.1），每个端点 {args.duration:g} 秒，预热 {args.warmup:g} 秒；"
          f"CPU {os.cpu_count()} 核")
    print(f"{'端点':<48} {'请求数':>8} {'吞吐(次/秒)':>11} {'p50(ms)':>8} {'p90(ms)':>8} {'p99(ms)':>8} {'最大(ms)':>9} {'错误':>5}")
    for r in rows:
        print(f"{r['name']:<48} {r['requests']:>8,} {r['rps']:>11.1f} {r['p50']:>8.1f} {r['p90']:>8.1f} "
              f"{r['p99']:>8.1f} {r['max']:>9.1f} {r['errors']:>5}")
    rec, base = rows
    if base["rps"]:
        print(f"推荐 / 对照：吞吐 {rec['rps'] / base['rps']:.2f} 倍，p50 {rec['p50'] / base['p50']:.2f} 倍")
    print(json.dumps({"recommendations": rec, "baseline": base}, ensure_ascii=False))


if __name__ == "__main__":
    main()
