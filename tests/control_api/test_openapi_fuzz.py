"""The API fuzzed from its own OpenAPI document: schemathesis drives every operation of
/api/openapi.json in process (WSGI), as a superadmin and as a plain admin, on SQLite
and on PostgreSQL, with all its checks on. A server error, an undeclared status, an
answer off its schema, invalid input accepted or valid input refused fails the test.

Bounded for CI: a fixed seed, a fixed number of generated examples per operation
(plus the examples and coverage phases' boundary cases), and no stateful phase (its
link-following would make the run's length depend on what earlier requests made).

Destructive operations are fuzzed like the rest: each request carries a token minted
for it alone, so a `DELETE /api/tokens/{id}` that revokes the caller's own token (or
any other request that ends the caller's access) cannot disturb the requests after it.
"""

from __future__ import annotations

import collections
import itertools
import time

import pytest
import schemathesis
from schemathesis.engine import events, from_schema
from schemathesis.transport.wsgi import WSGITransport

from control_api.wiring import build_credentials
from tests.conftest import ACTOR

SEED = 20261201
# A well-formed minisign key (no secret half exists): uploads get as far as their signature.
RELEASE_KEY = "RWQAAQIDBAUGBygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZH"
EXAMPLES = 15

CONFIG = {
    "seed": SEED,
    "workers": 1,  # peewee's connection is per thread; one worker keeps the run reproducible
    # No NUL in generated text: the API refuses it everywhere (400), which a JSON Schema
    # cannot say short of a pattern on every string; tests/control_api/test_body.py
    # sends NUL and lone surrogates to every reader instead.
    "generation": {"max-examples": EXAMPLES, "mode": "all", "allow-x00": False},
    "phases": {"stateful": {"enabled": False}},
    "checks": {"enabled": True},
    "operations": [
        # Valid by the schema yet refused with 400 by design: the server checks what a
        # schema cannot say (an SSH key that parses; a site or hosts that exist and that
        # the caller may use). The check stays on for every other answer.
        # So are WebAuthn responses: a schema cannot make a signature verify, nor a name printable;
        # and an approval's parameters, or an explain target, of the kind its action names.
        {"include-operation-id": ["createHost", "requestRun", "registerPasskey", "renamePasskey",
                                  "passkeySecondFactor", "passkeyLogin", "passkeyStepUp",
                                  "requestApproval", "explainAccess"],
         "checks": {"positive_data_acceptance": {
             "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]}}},
        # An upload valid by the schema is random bytes: the server refuses what is no PDF
        # (422) or has no usable filename (400), which no schema of a binary body can say.
        {"include-operation-id": ["uploadDocument"],
         "checks": {"positive_data_acceptance": {
             "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "413", "422"]}}},
        # A release bundle valid by the schema is random bytes with a random header: no signature
        # parses (400), none verifies (422), none is newer or the same version again (409).
        {"include-operation-id": ["uploadRelease"],
         "checks": {"positive_data_acceptance": {
             "expected-statuses": ["2xx", "400", "401", "403", "409", "413", "422"]}}},
        # A new order must name exactly the site's documents, which the schema cannot know.
        {"include-operation-id": ["reorderDocuments"],
         "checks": {"positive_data_acceptance": {
             "expected-statuses": ["2xx", "401", "403", "404", "409"]}}},
    ],
}


@pytest.fixture
def env(env, clamd):
    """In process, one request at a time: an event stream of a run that no worker takes
    would follow it for an hour and hold the whole fuzzing run. Uploads are scanned by
    the session's clamd, as in production."""
    return dict(env, FF_EVENT_STREAM_MAX_SECONDS="1", FF_CLAMD_SOCKET=clamd.socket,
                FF_WEBAUTHN_RP_ID="localhost", FF_WEBAUTHN_ORIGINS="http://localhost:8080",
                FF_RELEASE_PUBLIC_KEY=RELEASE_KEY)


@pytest.fixture(autouse=True)
def in_process_transport(monkeypatch):
    """schemathesis 4.32.5 hands requests' socket options to werkzeug's test client
    when a check sends a probe of its own (ignored_auth), and werkzeug refuses them; in
    process they mean nothing, so they are dropped there."""
    send = WSGITransport.send

    def without_socket_options(self, case, **kwargs):
        for name in ("max_redirects", "verify", "cert", "proxies"):
            kwargs.pop(name, None)
        return send(self, case, **kwargs)

    monkeypatch.setattr(WSGITransport, "send", without_socket_options)


def fuzz(app, token_for) -> tuple[int, list[str]]:
    """Run every phase over every operation: (requests sent, failures described)."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app,
                                            config=schemathesis.Config.from_dict(CONFIG))

    @schema.auth(refresh_interval=None, retry_on=[])
    class FreshToken:
        def get(self, case, context):
            return token_for()

        def set(self, case, token, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    sent, failures = 0, collections.Counter()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            sent += len(event.recorder.interactions)
            failures.update(describe(event.recorder))
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures[f"{event.__class__.__name__}: {getattr(event, 'label', '')} {event.value!r}"] += 1
    return sent, [f"{count} x {failure}" for failure, count in sorted(failures.items())]


def describe(recorder) -> list[str]:
    """One line per failed check: the operation, the check, and the exchange."""
    found = []
    for case_id, checks in recorder.checks.items():
        exchange = recorder.interactions.get(case_id)
        for check in checks:
            if check.failure_info is None:
                continue
            line = f"{recorder.label}: {check.name}: {check.failure_info.failure.title}"
            if exchange is not None and exchange.response is not None:
                request, response = exchange.request, exchange.response
                headers = {k: v for k, v in request.headers.items() if k != "Authorization"}
                line += (f" [{request.method} {request.uri} headers={headers} "
                         f"body={(request.body or b'')[:300]!r} -> {response.status_code} "
                         f"{(response.content or b'')[:300]!r}]")
            found.append(line)
    return found


@pytest.mark.parametrize("role", ["superadmin", "admin"])
def test_every_operation_answers_as_declared(app, deps, superadmin, admin, role, database_url):
    user = superadmin if role == "superadmin" else admin
    credentials, names = build_credentials(deps), itertools.count()
    started = time.monotonic()
    sent, failures = fuzz(app, lambda: credentials.create_token(user, f"fuzz-{next(names)}", None, ACTOR)[0])
    backend = database_url.split(":", 1)[0]
    print(f"\nfuzz {backend} {role}: {sent} requests in {time.monotonic() - started:.1f} s")
    assert sent > 500
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
