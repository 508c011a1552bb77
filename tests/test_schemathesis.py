"""Property-based fuzzing of the JSON API with schemathesis, against /openapi.json, in process (WSGI).

Every operation is called with generated requests — valid and invalid — as an administrator (so the
requests reach validation, not just the role check); the checks: no 5xx, a documented status code, a
documented content type and a body that matches the documented schema.  Examples are bounded so the
whole module stays within a few minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.test_api_support import app_config, bearer, build_template

#: Operations left out, and why: revoking the token or changing the admin's own password would log the
#: fuzzer out; re-indexing, Neo4j sync and batch recommendation start background jobs (tested in
#: test_api_admin); the readiness probe answers 503 by design until a worker is warm (tested in test_deploy).
EXCLUDED = [
    ("GET", "/api/ready"),
    ("DELETE", "/api/auth/token"),
    ("PATCH", "/api/admin/users/{user_id}"),
    ("POST", "/api/admin/reindex"),
    ("POST", "/api/admin/sync"),
    ("POST", "/api/admin/batch"),
]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    from api import create_app

    home = tmp_path_factory.mktemp("fuzz") / "home"
    build_template(home)
    app = create_app(app_config(home, tmp_path_factory.mktemp("fuzz-index")))
    yield app
    app.extensions["ganxun.graph"].close()


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    for method, path in EXCLUDED:
        schema = schema.exclude(method=method, path=path)
    return [result.ok() for result in schema.get_all_operations()]


def test_api_conforms_and_never_fails(fuzz_app) -> None:
    """Each operation gets its own bounded Hypothesis run (schemathesis's pytest plugin predates pytest 9,
    so the strategies are driven directly); every failing operation is reported together."""
    from hypothesis import given
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    headers = bearer(fuzz_app, "admin")
    operations = _operations(fuzz_app)
    assert len(operations) >= 40
    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(case) -> None:
            case.call_and_validate(headers=headers, checks=checks)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
