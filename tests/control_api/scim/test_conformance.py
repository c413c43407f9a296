"""scim2-tester (the real conformance checker) against the real app, in process through
scim2-client's WSGI engine: discovery, then create, read, query, replace, patch and
delete of Users and Groups, as scim2-tester drives them."""

from __future__ import annotations

from collections import Counter

from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_tester import Status, check_server


def test_scim2_tester_finds_nothing_wrong(app, scim_token):
    client = WSGISCIMClient(app, base_url="http://localhost/scim/v2",
                            headers={"Authorization": f"Bearer {scim_token}"})
    results = check_server(client, raise_exceptions=False)
    print("\n".join(f"{r.status.name:8} {r.title}: {r.reason or ''}" for r in results))
    print(Counter(r.status.name for r in results))
    wrong = [(r.title, r.status.name, r.reason) for r in results
             if r.status in (Status.DEVIATION, Status.ERROR, Status.CRITICAL)]
    assert not wrong, wrong
    assert sum(r.status is Status.SUCCESS for r in results) >= 50
