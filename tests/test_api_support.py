"""Fixtures for the API tests (imported by each ``tests/test_api_*.py``; this module holds no tests).

Following Flask's tutorial: ``app`` is built by ``create_app`` with a test config, ``client`` and
``runner`` come from it, and ``AuthActions`` logs in through the real login page or asks for a bearer
token.  The small fixture corpus is built once per session into a template database; every test gets
its own copy, so tests that import or change users never see each other.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.accounts import Accounts
from kg.build import build_graph
from kg.config import Settings
from kg.ontology import load_ontology
from kg.store.embedded import EmbeddedStore
from tests.conftest import FIXTURE_CORPUS

PASSWORD = "correct-horse-1"
#: username → (role, cadre id)
USERS: dict[str, tuple[str, str | None]] = {
    "admin": ("admin", None),
    "designer": ("designer", None),
    "evaluator": ("evaluator", None),
    "cadre1": ("cadre", "cadre:t-001"),
    "cadre2": ("cadre", "cadre:t-002"),
}
#: The fixture corpus's reports are computed as of this day (its records are from 2024–2025).
AS_OF = "2025-12-01"
#: Cheap hashing keeps logins fast in tests; the service itself uses werkzeug's scrypt.
PASSWORD_METHOD = "pbkdf2:sha256:1000"
TOKENS_FILE = "tokens.json"


#: No Neo4j unless a test asks for one: a sync started by a test must never reach a server by accident.
NO_NEO4J = "bolt://127.0.0.1:9"


class CsrfClient(FlaskClient):
    """The test client of the API fixtures: a state-changing request without a bearer header carries the CSRF
    token the way a page sends it (``X-CSRFToken`` from the ``csrf-token`` meta tag, read from the login page in
    this client's session), unless the test passes its own or ``csrf=False`` to send none."""

    def open(self, *args: Any, csrf: bool = True, **kwargs: Any) -> Any:
        method = str(kwargs.get("method", "GET")).upper()
        headers = dict(kwargs.pop("headers", None) or {})
        if (csrf and method not in ("GET", "HEAD", "OPTIONS")
                and not str(headers.get("Authorization", "")).lower().startswith("bearer ")
                and "X-CSRFToken" not in headers):
            headers["X-CSRFToken"] = self.csrf_token()
        return super().open(*args, headers=headers, **kwargs)

    def csrf_token(self) -> str:
        page = self.get("/login").get_data(as_text=True)
        return re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)


def with_csrf_client(app: Flask) -> Flask:
    app.test_client_class = CsrfClient
    return app


def settings_for(home: Path, corpora: tuple[Path, ...] = (FIXTURE_CORPUS,), **env: str) -> Settings:
    return Settings.from_env({"GANXUN_HOME": str(home), "GANXUN_CORPORA": ":".join(map(str, corpora)),
                              "NEO4J_URI": NO_NEO4J, **env})


def build_template(home: Path, corpora: tuple[Path, ...] = (FIXTURE_CORPUS,), users: dict = USERS) -> Settings:
    """Build the graph and the accounts once (with a bearer token per user, in ``tokens.json``): the
    template every test copies."""
    settings = settings_for(home, corpora)
    ontology = load_ontology()
    with EmbeddedStore(settings.db_path, [c.name for c in ontology.classes.values() if not c.personal]) as store:
        build_graph(store, list(corpora), ontology)
    accounts = Accounts(home / "accounts.db", password_method=PASSWORD_METHOD)
    tokens = {}
    for username, (role, cadre_id) in users.items():
        user = accounts.create_user(username, PASSWORD, role, f"测试{username}", cadre_id)
        tokens[username] = accounts.issue_token(user)[0]
    (home / TOKENS_FILE).write_text(json.dumps(tokens))
    return settings


def app_config(home: Path, index_dir: Path, **extra: Any) -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test", "SETTINGS": settings_for(home), "ACCOUNTS_DB": str(home / "accounts.db"),
            "INDEX_DIR": str(index_dir), "AS_OF": AS_OF, "PASSWORD_METHOD": PASSWORD_METHOD, **extra}


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("api-template")
    build_template(home)
    return home


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One search index for the session: the fixture catalogue is encoded once."""
    return tmp_path_factory.mktemp("api-index")


SAMPLE_CADRES = 50
SAMPLE_AS_OF = "2026-11-15"  # the generator's records run until this day


def generate_cadres(out: Path, count: int = SAMPLE_CADRES) -> None:
    """Seeded sample cadres and their records, as ``python -m corpora generate`` writes them."""
    from corpora.cadres import CadreGenerator, read_catalogue, write_cadres
    from corpora.__main__ import SAMPLE_DIR

    out.mkdir(parents=True, exist_ok=True)
    generator = CadreGenerator(load_ontology(), read_catalogue([SAMPLE_DIR]))
    with (out / "cadres.jsonl").open("w", encoding="utf-8") as c_out, \
            (out / "records.jsonl").open("w", encoding="utf-8") as r_out:
        write_cadres(generator, count, c_out, r_out)


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample catalogue plus 50 generated cadres, built once per session (for pages, analytics and
    nominations, which need a catalogue the size of the real one)."""
    from corpora.__main__ import SAMPLE_DIR

    home = tmp_path_factory.mktemp("api-sample")
    generate_cadres(home / "generated")
    build_template(home, (SAMPLE_DIR, home / "generated"),
                   {**{k: v for k, v in USERS.items() if v[0] != "cadre"},
                    "cadre1": ("cadre", "cadre:0000001"), "cadre2": ("cadre", "cadre:0000002")})
    return home


@pytest.fixture(scope="session")
def sample_index_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The search index of the sample catalogue: kept in pytest's cache between runs when the cache is on
    (it is updated, not rebuilt: only changed texts are encoded again), else built once in a temp folder."""
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("ganxun-api-sample-index")) if cache is not None else tmp_path_factory.mktemp("sample-index")


@pytest.fixture(scope="session")
def sample_app(sample_home: Path, sample_index_dir: Path) -> Flask:
    """One app over the sample graph for the session (tests on it must not write)."""
    app = with_csrf_client(create_app(app_config(sample_home, sample_index_dir, AS_OF=SAMPLE_AS_OF)))
    yield app
    app.extensions["ganxun.graph"].close()


@pytest.fixture
def app(template_home: Path, index_dir: Path, tmp_path: Path) -> Flask:
    """A fresh app over its own copy of the template: for tests that write."""
    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    app = with_csrf_client(create_app(app_config(home, index_dir)))
    yield app
    app.extensions["ganxun.graph"].close()


@pytest.fixture(scope="session")
def shared_app(template_home: Path, index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """One app for the whole session: for tests that only read (and log nothing they later assert)."""
    home = tmp_path_factory.mktemp("api-shared") / "home"
    shutil.copytree(template_home, home)
    app = with_csrf_client(create_app(app_config(home, index_dir)))
    yield app
    app.extensions["ganxun.graph"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def shared_client(shared_app: Flask) -> FlaskClient:
    return shared_app.test_client()


def bearer(app: Flask, username: str) -> dict[str, str]:
    """The pre-issued bearer header of a fixture user."""
    home = Path(app.config["ACCOUNTS_DB"]).parent
    return {"Authorization": f"Bearer {json.loads((home / TOKENS_FILE).read_text())[username]}"}


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@dataclass
class AuthActions:
    client: FlaskClient

    def login(self, username: str = "admin", password: str = PASSWORD) -> Any:
        """Log in through the login page (session cookie)."""
        return self.client.post("/login", data={"username": username, "password": password})

    def logout(self) -> Any:
        return self.client.post("/logout")

    def token(self, username: str = "admin") -> dict[str, str]:
        """A bearer header for ``username`` (issued when the template was built)."""
        return bearer(self.client.application, username)


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)
