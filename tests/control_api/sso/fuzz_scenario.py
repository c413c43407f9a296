"""The SSO operations fuzzed from the OpenAPI document with SAML and OIDC turned on (the
suite-wide fuzz, tests/control_api/openapi_fuzz_scenario.py, runs them unconfigured, where
each answers 404): whatever the IdP's form or the callback's query holds, a declared
status and never a server error. Same seed and checks as the suite-wide run."""

from __future__ import annotations

import time

import pytest
import schemathesis

from tests.control_api.openapi_fuzz_scenario import CONFIG, execute, in_process_transport  # noqa: F401

# Five public operations: fewer examples than the suite-wide run keeps this under 20 s a backend.
SSO_CONFIG = dict(CONFIG, generation={**CONFIG["generation"], "max-examples": 15})


def test_sso_operations_answer_as_declared_when_configured(sso):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", sso.app,
                                            config=schemathesis.Config.from_dict(SSO_CONFIG))
    schema = schema.include(path_regex=r"^/api/auth/(saml|oidc)/")
    started = time.monotonic()
    sent, failures = execute(schema)
    print(f"\nSSO fuzz: {sent} requests in {time.monotonic() - started:.1f} s")
    assert sent > 500
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
