"""The service layer the JSON routes and the pages share: the read models of one worker, their warm-up, the
readiness probe, and a per-request view of one cadre.

Why a layer: the routes and the pages ask the same questions (a cadre's profile, hours, gaps,
recommendations, path; a search), and each answer rests on read models that are expensive to build (the
catalogue snapshot, the search index and its encoder).  Here they are built once per graph version
(:mod:`api.graph`), loaded when a worker starts (:func:`start_warm_up`, called from gunicorn's
``post_worker_init`` and by ``python -m api serve``) rather than inside a request, and kept fresh without
heavy work in a request: after a catalogue change a worker reopens the persisted search index at once and
leaves the re-encoding to a job (:func:`submit_index_update`).  :class:`CadreView` fetches a cadre's profile
once and analyses gaps once per request, however many answers a page shows.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from flask_smorest import abort

from api import fields as f
from api.auth import ApiBlueprint
from api.graph import graph, require_reader_of

__all__ = ["INDEX_JOB", "SEARCH_WARMING", "CadreView", "Readiness", "bp", "cadre_view", "index_job", "init_app",
           "readiness", "recommender", "search_service", "search_warming", "shared_result", "snapshot", "start_warm_up",
           "study_choices", "submit_index_update", "warm_up"]

log = logging.getLogger(__name__)

bp = ApiBlueprint("service", __name__, url_prefix="/api", description="服务状态")

#: The readiness probe's answer while a worker is still loading (also the body load balancers see).
LOADING = "服务正在加载模型与索引…"
#: The warm-up step that loads the search index and its encoder; until it is done a request that needs them
#: answers :data:`SEARCH_WARMING` at once (503, ``Retry-After``) instead of waiting a minute or two on the load.
SEARCH_PART = "检索索引与编码器"
SEARCH_WARMING = "正在准备检索模型…（服务刚启动，约一两分钟后可用，请稍后再试）"
#: Seconds a client is told to wait before it asks again while the search model loads.
SEARCH_RETRY_AFTER = 15
#: The one job kind that brings the search index in line with the graph — submitted after a change and by the
#: administrator (update or rebuild) alike, so the two never run together.
INDEX_JOB = "重建索引"
#: Seconds a worker waits after a shared job failed before it submits the same work again.
RETRY_AFTER_FAILURE = 60.0


# ─── read models, one of each per graph version ───
def snapshot() -> Any:
    """The catalogue snapshot for the current graph version (:mod:`recommender.catalogue.snapshot`)."""
    from recommender.catalogue.snapshot import load_snapshot

    gr = graph()
    return gr.derived("snapshot", lambda: load_snapshot(gr.store, gr.ontology))


def recommender() -> Any:
    """The recommender over the current snapshot; a free-text intent is scored with the search service's
    vectors and encoder (loaded at worker start), so an intent never loads a model inside a request."""
    from recommender.service import Recommender

    gr = graph()
    return gr.derived("recommender", lambda: Recommender(snapshot(), gr.store, search=_CurrentSearchVectors(snapshot()),
                                                         choices=study_choices()))


def study_choices() -> Any:
    """The cadres' study plans and feedback (:class:`kg.choices.CadreChoices`): one file under ``GANXUN_HOME`` that
    every worker opens, read with each profile and written by the cadre's own routes (:mod:`api.cadres`)."""
    from kg.choices import CadreChoices

    app = current_app._get_current_object()
    found = app.extensions.get("ganxun.choices")
    if found is None:
        found = app.extensions.setdefault("ganxun.choices", CadreChoices.at_home(graph().settings.home))
    return found


class _CurrentSearchVectors:
    """Course and query vectors from this worker's current search service, looked up when ranking first needs
    them (the recommender is built before the search service, and outlives none of its generations).  Courses
    not yet in the index score zero until the update job has encoded them."""

    def __init__(self, catalogue: Any) -> None:
        self._snapshot = catalogue
        self._vectors: Any = None

    @property
    def service(self) -> Any:
        """The current search service, or, while this worker still loads it, a stand-in that is not ``ready``:
        ranking then leaves out the role fit, as it does for an index not built yet, and the page answers now."""
        return _LOADING_SEARCH if search_warming() else self._current().service

    def _current(self) -> Any:
        from recommender.ranking.semantic import SearchVectors

        service = search_service()
        if self._vectors is None or self._vectors.service is not service:
            self._vectors = SearchVectors(service, self._snapshot)
        return self._vectors

    def course_vectors(self) -> Any:
        return self._current().course_vectors()

    def __getattr__(self, name: str) -> Any:
        """Every other look-up (query encoding, nearest courses) from the current service's vectors."""
        return getattr(self._current(), name)


class _LoadingSearch:
    """What :attr:`_CurrentSearchVectors.service` is while the encoder loads: a service that is not ready."""

    ready = False


_LOADING_SEARCH = _LoadingSearch()


def search_warming() -> bool:
    """Whether a request must not wait for the search service: this served worker's warm-up has not loaded it yet
    (the warm-up itself, outside any request, goes on)."""
    state = readiness()
    return has_request_context() and state.state == "warming" and SEARCH_PART not in state.loaded


def search_service() -> Any:
    """The search service over the current snapshot, sharing the worker's one encoder.

    While the worker is still warming up to it (:func:`search_warming`) a request gets :data:`SEARCH_WARMING` at
    once — 503 with ``Retry-After``, JSON on the API, the error page with that line on a page — rather than
    loading the encoder itself or queueing behind the warm-up for a minute or two with no word.

    In a worker that was never asked to warm up (tests and commands) it is opened with an update, which encodes
    only what changed since the index was saved.  In a served worker — warming, ready, or whose warm-up failed —
    encoding never runs inside a request: a graph change reopens it over the index
    on disk at once — items deleted since are left out, new ones are found once encoded — and, when the store
    has moved on from the index, submits the update job; when that job saves a new generation every worker's
    service installs it on its next query."""
    from recommender.search.service import SearchService

    if search_warming():
        abort(503, message=SEARCH_WARMING, headers={"Retry-After": str(SEARCH_RETRY_AFTER)})
    gr = graph()
    index_dir = Path(current_app.config["INDEX_DIR"])
    inline = readiness().state == "idle"

    def build() -> Any:
        service = SearchService.open(gr.store, gr.settings, snapshot=snapshot(), ontology=gr.ontology,
                                     index_dir=index_dir, update=inline)
        if not inline and service.stale:
            submit_index_update()
        return service

    return gr.derived("search", build)


def index_job(rebuild: bool = False) -> Any:
    """The work of an :data:`INDEX_JOB`: update the search index (``rebuild``: encode everything afresh), with
    progress per encoded batch, until it covers a graph version that is still the store's when it ends — so a
    job that overlapped a change catches up before it ends, and a second job is not needed."""
    from recommender.search.service import SearchService

    gr = graph()
    index_dir = Path(current_app.config["INDEX_DIR"])

    def work(progress: Any) -> dict[str, Any]:
        progress(0, 0, "读取目录并编码变化的文本…")
        fresh = rebuild
        while True:
            version = gr.store.version()
            service = SearchService.open(gr.store, gr.settings, ontology=gr.ontology, rebuild=fresh,
                                         index_dir=index_dir, progress=progress)
            fresh = False  # a catch-up pass encodes only what changed during the first
            if gr.store.version() == version:
                break
        return {k: v for k, v in vars(service.last_update).items() if isinstance(v, (int, float, str, bool))}

    return work


def submit_index_update() -> Any:
    """Bring the search index in line with the graph after a change — one job per graph version, whichever
    worker asks first.  Returns the job, or None when an index job (an earlier version's, or the
    administrator's) is already running: it catches up before it ends."""
    from api.jobs import JobBusy, jobs

    try:
        return jobs().submit(INDEX_JOB, index_job(), key=f"v{graph().version}")
    except JobBusy:
        return None


@dataclass
class _Submitted:
    """The job this worker last submitted (or found running) for a kind of shared work, and for which key."""

    key: str
    job_id: int
    failed_at: float | None = None


def shared_result(kind: str, work: Any, key: str) -> Any:
    """The result of ``work(progress)``, computed once for all workers: inline while no warm-up was asked (tests,
    commands), else as a job of ``kind`` keyed by ``key`` (the same key is one job, in any worker), whose stored
    result every worker reads — None until it is done, so no request waits for it.

    Each worker remembers the job it submitted per kind, so while it runs a request only reads its row (no
    ``BEGIN IMMEDIATE`` on the jobs database per request); after it failed the work is submitted again only
    :data:`RETRY_AFTER_FAILURE` seconds later."""
    from api.jobs import JobBusy, jobs

    if readiness().state == "idle":
        return work(lambda *_: None)
    submitted: dict[str, _Submitted] = current_app.extensions.setdefault("ganxun.shared_jobs", {})
    seen = submitted.get(kind)
    if seen is not None and seen.key == key:
        job = jobs().get(seen.job_id)
        if job is not None and job.state == "running":
            return None
        if job is not None and job.key == key:
            if job.state == "done":
                return job.result
            seen.failed_at = seen.failed_at or time.monotonic()  # failed: wait before trying again
            if time.monotonic() - seen.failed_at < RETRY_AFTER_FAILURE:
                return None
        # else another key's job, which has ended: submit this key's now
    try:
        job = jobs().submit(kind, work, key=key)
    except JobBusy as exc:  # another key's job is running: look again once it has ended
        submitted[kind] = _Submitted(key, exc.job.id)
        return None
    submitted[kind] = _Submitted(key, job.id)
    return job.result if job.state == "done" else None


# ─── warm-up and readiness ───
@dataclass
class Readiness:
    """What this worker has loaded: ``idle`` (no warm-up asked: models load on first use, as in tests),
    ``warming``, ``ready`` or ``failed``; each loaded part with its seconds."""

    state: str = "idle"
    loaded: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def readiness(app: Flask | None = None) -> Readiness:
    app = app or current_app._get_current_object()
    return app.extensions.setdefault("ganxun.readiness", Readiness())


def _warm_steps() -> list[tuple[str, Any]]:
    """The parts a worker loads before it answers ready, in order (later ones use earlier ones)."""
    from api.analytics import topic_demand
    from api.review import warm_tagger

    return [
        ("目录快照", snapshot),
        (SEARCH_PART, lambda: search_service().warm()),
        ("推荐器与课程向量", lambda: recommender().warm()),
        ("学习需求", topic_demand),
        ("主题标注器", warm_tagger),  # an import's untagged items are tagged in its request: fitted before, not in it
    ]


def warm_up(app: Flask) -> Readiness:
    """Load every read model and the encoder now, in this thread; readiness says how far it got.

    Through :func:`start_warm_up` (a served worker) the state is ``warming`` meanwhile, so work shared by the
    workers (demand for every cadre) is submitted as a job; called directly (tests that serve an app) it stays
    ``idle`` until done, so that work is done here and the app is complete when this returns."""
    state = readiness(app)
    with app.app_context():
        graph().refresh(force=True)
        for name, build in _warm_steps():
            started = time.perf_counter()
            try:
                build()
            except Exception as exc:  # reported by /api/ready; the part is built again on first use
                log.exception("预载%s失败", name)
                state.state, state.error = "failed", f"预载{name}失败：{exc}"
                return state
            state.loaded[name] = round(time.perf_counter() - started, 3)
            log.info("已预载%s（%.1f 秒）", name, state.loaded[name])
    state.state = "ready"
    return state


def start_warm_up(app: Flask) -> threading.Thread | None:
    """Warm ``app`` in a background thread of this worker (once; a second call does nothing) — after gunicorn
    forks it, so the encoder's OpenMP threads are never forked."""
    state = readiness(app)
    with state.lock:
        if state.state != "idle":
            return None
        state.state = "warming"
    thread = threading.Thread(target=warm_up, args=(app,), name="ganxun-warm-up", daemon=True)
    thread.start()
    return thread


class ReadySchema(f.Schema):
    状态 = f.Integer()
    进程 = f.Integer(metadata={"description": "应答的工作进程号"})
    图谱版本 = f.Integer()
    已加载 = f.Dict(metadata={"description": "已加载的部分 → 用时（秒）"})


@bp.route("/ready")
@bp.response(200, ReadySchema)
@bp.alt_response(503, response="SERVICE_UNAVAILABLE")
def ready() -> Any:
    """就绪探针：本工作进程的模型与索引加载完毕时 200（含图谱版本），加载中或失败时 503（无需登录）"""
    import os

    from api.errors import fail

    state = readiness()
    if state.state == "failed":
        fail(503, state.error or LOADING)
    if state.state != "ready":
        fail(503, LOADING)
    return {"状态": 200, "进程": os.getpid(), "图谱版本": graph().version, "已加载": dict(state.loaded)}


# ─── one cadre, one request ───
class CadreView:
    """One cadre's answers for one request, each computed at most once: one profile fetch (one read of the
    cadre and their records) and one gap analysis, whichever answers a route or page shows.

    Built by :func:`cadre_view`, which checks access first (401 / 403, without reading the store); an unknown
    cadre surfaces as :class:`recommender.errors.UnknownCadre` on first use (404, :mod:`api.errors`)."""

    def __init__(self, cadre_id: str, day: dt.date | None) -> None:
        self.cadre_id = cadre_id
        self.recommender = recommender()
        self.day = self.recommender.today(day)  # None: the recommender's clock
        self._recommendations: dict[tuple[int, str | None], Any] = {}
        self._paths: dict[str | None, Any] = {}

    @cached_property
    def profile(self) -> Any:
        return self.recommender.profile(self.cadre_id, self.day)

    @cached_property
    def hours(self) -> Any:
        return self.recommender.hours_for(self.profile, self.day)

    @cached_property
    def gaps(self) -> Any:
        return self.recommender.gaps_for(self.profile, self.day)

    @cached_property
    def learning_map(self) -> Any:
        return self.recommender.learning_map_for(self.gaps)

    def recommendations(self, k: int = 10, intent: str | None = None) -> Any:
        if (k, intent) not in self._recommendations:
            self._recommendations[k, intent] = self.recommender.recommend_for(self.profile, self.gaps, self.day,
                                                                              k=k, intent=intent)
        return self._recommendations[k, intent]

    def learning_path(self, intent: str | None = None) -> Any:
        if intent not in self._paths:
            self._paths[intent] = self.recommender.learning_path_for(self.profile, self.gaps, self.hours, self.day,
                                                                     intent)
        return self._paths[intent]


def cadre_view(cadre_id: str, day: dt.date | None) -> CadreView:
    """The request's view of ``cadre_id`` as of ``day`` (today when None; kept on ``flask.g``), after the access
    check."""
    require_reader_of(cadre_id)
    views: dict[tuple[str, dt.date | None], CadreView] = g.setdefault("ganxun_cadre_views", {})
    if all(seen != cadre_id for seen, _ in views):
        _audit_reader(cadre_id)
    if (cadre_id, day) not in views:
        views[cadre_id, day] = CadreView(cadre_id, day)
    return views[cadre_id, day]


def _audit_reader(cadre_id: str) -> None:
    """Someone other than the cadre (an administrator) reads their personal data: once per request and cadre,
    naming what was read: the path asked, which an administrator reads (an endpoint name like cadre.overview is
    the code's word, not theirs)."""
    from api.auth import audit, current_user

    if current_user().cadre_id != cadre_id:
        audit("查阅干部数据", cadre_id, 内容=request.full_path.rstrip("?"))


def init_app(app: Flask) -> None:
    """Readiness starts ``idle``: a worker warms up only when its server asks (:func:`start_warm_up`)."""
    readiness(app)

