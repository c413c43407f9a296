"""SMTP over TLS against a real aiosmtpd peer with a certificate from a private CA: the
server's certificate and name are verified (STARTTLS and implicit TLS), against the
system store or FF_SMTP_CA_FILE."""

from __future__ import annotations

import pytest

from control_api.auth.mailer import MailError, SmtpMailer
from tests.conftest import PASSWORD
from tests.control_api.auth.test_second_factor import cookie_of, login, make_client
from tests.peers.smtp import SmtpServer
from tests.peers.testca import TestCA


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("smtp-ca"))


def serve(request, ca, tls: str, names: list[str]) -> SmtpServer:
    server = SmtpServer(tls=tls, cert=ca.issue(f"smtp-{tls}-{names[0]}", names)).start()
    request.addfinalizer(server.stop)
    return server


def send(server: SmtpServer, ca_file=None) -> None:
    SmtpMailer(server.url, "weco@example.test", ca_file=ca_file).send(
        "admin@example.test", "code", "123456")


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_an_untrusted_certificate_is_refused_and_the_private_ca_is_accepted(request, ca, tls):
    server = serve(request, ca, tls, ["127.0.0.1"])
    with pytest.raises(MailError, match="SSLCertVerificationError"):
        send(server)  # the system store does not know the test CA
    assert server.inbox.messages == []
    send(server, ca_file=str(ca.cert_path))
    assert [m["To"] for m in server.inbox.messages] == ["admin@example.test"]


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_a_trusted_certificate_for_another_name_is_refused(request, ca, tls):
    server = serve(request, ca, tls, ["mail.example.test"])
    with pytest.raises(MailError, match="SSLCertVerificationError"):
        send(server, ca_file=str(ca.cert_path))
    assert server.inbox.messages == []


def test_the_app_sends_email_codes_through_starttls_with_ff_smtp_ca_file(
        request, ca, env, db, clock, fast_hasher, admin):
    server = serve(request, ca, "starttls", ["127.0.0.1"])
    client = make_client(env, db, clock, fast_hasher, FF_SMTP_URL=server.url,
                         FF_SMTP_CA_FILE=str(ca.cert_path))
    headers = cookie_of(login(client))
    assert client.simulate_post("/api/me/email-codes", json={"password": PASSWORD},
                                headers=headers).status_code == 204
    challenge = login(client).json["challenge"]
    sent = client.simulate_post("/api/auth/login/email-code", json={"challenge": challenge})
    assert sent.status_code == 202, sent.json
    assert server.inbox.messages[-1]["To"] == "admin@example.test"


def test_starttls_is_required_when_the_url_asks_for_it(request):
    plain = SmtpServer().start()  # offers no STARTTLS
    request.addfinalizer(plain.stop)
    with pytest.raises(MailError, match="SMTPNotSupportedError"):
        SmtpMailer(plain.url.replace("smtp://", "smtp+starttls://"), "weco@example.test").send(
            "admin@example.test", "code", "123456")
    assert plain.inbox.messages == []
