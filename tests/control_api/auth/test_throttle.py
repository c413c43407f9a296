"""Lockout and per-IP limits: decided before bcrypt, identical for unknown accounts."""

from __future__ import annotations

import json

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.auth.passwords import PasswordHasher
from control_api.auth.totp import TotpService
from control_api.models import AuditEvent, User
from control_api.settings import load_settings
from control_api.wiring import build_deps
from tests.conftest import ACTOR, PASSWORD
from tests.control_api.auth.test_second_factor import now_code, second


class CountingHasher(PasswordHasher):
    """Counts bcrypt verifications, to show throttled attempts do none."""

    def __init__(self) -> None:
        super().__init__(cost=4)
        self.verifications = 0

    def verify(self, password, stored):
        self.verifications += 1
        return super().verify(password, stored)


@pytest.fixture
def hasher():
    return CountingHasher()


@pytest.fixture
def client(settings, db, clock, hasher):
    return falcon.testing.TestClient(create_app(build_deps(settings, db, clock=clock, hasher=hasher)))


def attempt(client, email="admin@example.test", password="wrong password!!", ip="198.51.100.1", **kw):
    return client.simulate_post("/api/auth/login", json={"email": email, "password": password},
                                remote_addr=ip, **kw)


def actions(name: str) -> int:
    return AuditEvent.select().where(AuditEvent.action == name).count()


def test_five_failures_lock_the_account_for_fifteen_minutes(client, admin, clock, hasher):
    for number in range(5):
        assert attempt(client, ip=f"198.51.100.{number}").status_code == 401
    assert actions("auth.lockout") == 1
    before = hasher.verifications
    locked = attempt(client, password=PASSWORD, ip="203.0.113.9")  # right password, fresh address
    assert locked.status_code == 429
    assert locked.json["title"] == "Too many attempts"
    assert 1 <= int(locked.headers["Retry-After"]) <= 900
    # Refused unchecked, yet after the bcrypt work of a check (a dummy one): a lock takes as
    # long as the break-glass account's look-alike lock, which checks (see guard.py).
    assert hasher.verifications == before + 1
    assert actions("auth.login_throttled") == 1
    clock.advance(minutes=14, seconds=59)
    assert attempt(client, password=PASSWORD, ip="203.0.113.10").status_code == 429
    clock.advance(seconds=2)
    assert attempt(client, password=PASSWORD, ip="203.0.113.11").status_code == 200


def test_unknown_accounts_are_counted_and_answered_the_same(client, admin):
    def run(email):
        answers = [attempt(client, email=email, ip=f"198.51.100.{n}") for n in range(6)]
        return [(a.status_code, a.json) for a in answers]

    known, unknown = run("admin@example.test"), run("ghost@example.test")
    assert [status for status, _ in known] == [401] * 5 + [429]
    strip = [(s, {**b, "description": b["description"].split(" in ")[0]}) for s, b in known]
    assert strip == [(s, {**b, "description": b["description"].split(" in ")[0]}) for s, b in unknown]


def test_success_resets_the_account_count(client, admin):
    for number in range(4):
        attempt(client, ip=f"198.51.100.{number}")
    assert attempt(client, password=PASSWORD, ip="198.51.100.9").status_code == 200
    for number in range(4):
        assert attempt(client, ip=f"198.51.101.{number}").status_code == 401


def test_ten_attempts_per_address_per_window(client, admin, clock, hasher):
    answers = [attempt(client, email=f"user{n}@example.test").status_code for n in range(12)]
    assert answers == [401] * 10 + [429] * 2
    assert hasher.verifications == 10
    assert attempt(client, email="x@example.test", ip="198.51.100.200").status_code == 401
    clock.advance(minutes=15)
    assert attempt(client, password=PASSWORD).status_code == 200


def test_a_forwarded_header_is_ignored_unless_the_peer_is_a_trusted_proxy(env, db, clock, hasher, admin):
    plain = falcon.testing.TestClient(create_app(build_deps(load_settings(env), db, clock=clock,
                                                            hasher=hasher)))
    for number in range(10):
        attempt(plain, email=f"u{number}@example.test", headers={"X-Forwarded-For": f"10.9.9.{number}"})
    assert attempt(plain, email="z@example.test", headers={"X-Forwarded-For": "10.9.9.99"}).status_code == 429

    proxied = load_settings({**env, "FF_TRUSTED_PROXIES": "192.0.2.0/24"})
    client = falcon.testing.TestClient(create_app(build_deps(proxied, db, clock=clock, hasher=hasher)))
    forwarded = attempt(client, email="y@example.test", ip="192.0.2.5",
                        headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.77, 192.0.2.6"})
    assert forwarded.status_code == 401
    last = AuditEvent.select().where(AuditEvent.action == "auth.login_failed").order_by(
        AuditEvent.seq.desc()).first()
    assert '"source_ip":"203.0.113.77"' in last.event_json


def test_bad_trusted_proxies_setting_stops_start_up():
    from control_api.settings import SettingsError

    with pytest.raises(SettingsError, match=r"FF_TRUSTED_PROXIES='10\.0\.0\.0/33' is not allowed"):
        load_settings({"FF_TRUSTED_PROXIES": "10.0.0.0/33"})


# -- the break-glass account stays reachable (#11 item 8) -------------------------------------------


def break_glass(users, deps, clock):
    """The break-glass account as `weco break-glass create` makes it: TOTP enrolled; the seed."""
    glass = users.create("break-glass@weco.invalid", "superadmin", PASSWORD, ACTOR, break_glass=True)
    totp = TotpService(deps.keys)
    seed, _ = totp.begin(glass, clock.now())
    totp.confirm(glass, clock.now())
    return seed


def test_the_break_glass_account_answers_wrong_passwords_like_any_other_account(
        client, deps, users, clock, hasher, admin):
    break_glass(users, deps, clock)

    def answers(email, first_ip, second_ip):
        seen = []
        for ip in [first_ip] * 11 + [second_ip] * 2:
            before = hasher.verifications
            result = attempt(client, email=email, ip=ip)
            # bcrypt work stands in for the time an answer takes.
            seen.append((result.status_code, result.json, result.headers.get("Retry-After"),
                         hasher.verifications - before))
        return seen

    glass = answers("break-glass@weco.invalid", "198.51.100.1", "198.51.100.2")
    known = answers("admin@example.test", "198.51.100.3", "198.51.100.4")
    unknown = answers("ghost@example.test", "198.51.100.5", "198.51.100.6")
    assert [status for status, *_ in glass] == [401] * 5 + [429] * 8
    assert glass == known == unknown


def test_whoever_lacks_the_envelope_cannot_lock_the_break_glass_account(client, deps, users, clock):
    seed = break_glass(users, deps, clock)
    email = "break-glass@weco.invalid"
    for ip in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        answers = [attempt(client, email=email, ip=ip).status_code for _ in range(11)]
        expected = [401] * 5 + [429] * 6 if ip == "198.51.100.1" else [429] * 11
        assert answers == expected  # as if it were locked; the per-address limit still applies
    assert actions("auth.lockout") == 0
    failed = AuditEvent.select().where(AuditEvent.action == "auth.login_failed")
    # Every wrong password was checked, so every one is audited.
    assert failed.count() == 30 and all('"severity":"critical"' in row.event_json for row in failed)
    # The envelope's holder, from anywhere else, gets in at once, while it looks locked.
    first = attempt(client, email=email, password=PASSWORD, ip="203.0.113.5")
    assert first.status_code == 200 and first.json["second_factor_required"]
    assert attempt(client, email=email, ip="203.0.113.6").status_code == 429
    clock.advance(seconds=30)
    assert second(client, first.json["challenge"], "totp", now_code(clock, seed)).status_code == 200


def test_wrong_codes_still_lock_the_break_glass_account(client, deps, users, clock):
    break_glass(users, deps, clock)
    glass = User.get(User.break_glass)
    # Guessing codes needs the password, that is, the envelope: those failures do lock.
    for _ in range(5):
        challenge = attempt(client, email=glass.email, password=PASSWORD, ip="203.0.113.5").json["challenge"]
        assert second(client, challenge, "totp", "000000").status_code == 401
    assert actions("auth.lockout") == 1
    assert attempt(client, email=glass.email, password=PASSWORD, ip="203.0.113.6").status_code == 429


# -- throttled attempts: one audit event per address and window, with its count ----------------------


def test_a_thousand_throttled_attempts_add_a_bounded_number_of_rows_and_keep_the_count(client, admin, clock):
    before = AuditEvent.select().count()
    answers = [attempt(client, email=f"spray{n % 37}@example.test").status_code for n in range(1010)]
    assert answers.count(401) == 10 and answers.count(429) == 1000
    added = AuditEvent.select().count() - before
    assert added <= 12  # ten failed logins (each checked a password), one throttling event, no more
    assert actions("auth.login_throttled") == 1
    # The window's count is written once the window is over, at the next credential check.
    clock.advance(minutes=15)
    assert attempt(client, ip="203.0.113.50").status_code == 401
    closed = AuditEvent.get(AuditEvent.action == "auth.throttle_window_closed")
    event = json.loads(closed.event_json)
    assert closed.target == "address:198.51.100.1"
    assert event["metadata"]["refused"] == 1000 and event["metadata"]["by_limit"] == {"address": 1000,
                                                                                       "account": 0}
    clock.advance(minutes=15)
    attempt(client, ip="203.0.113.51")
    assert actions("auth.throttle_window_closed") == 1  # written exactly once


def test_ipv6_clients_share_the_budget_of_their_64(client, admin):
    answers = [attempt(client, email=f"v6-{n}@example.test", ip=f"2001:db8:1:2::{n + 1:x}").status_code
               for n in range(10)]
    assert answers == [401] * 10
    assert attempt(client, email="x@example.test", ip="2001:db8:1:2:ffff:1:2:3").status_code == 429
    assert attempt(client, email="x@example.test", ip="2001:db8:1:3::1").status_code == 401
    # IPv4 stays per address.
    for n in range(10):
        attempt(client, email=f"v4-{n}@example.test", ip="192.0.2.1")
    assert attempt(client, email="y@example.test", ip="192.0.2.1").status_code == 429
    assert attempt(client, email="y@example.test", ip="192.0.2.2").status_code == 401
