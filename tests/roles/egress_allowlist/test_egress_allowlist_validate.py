"""The egress allowlist's input checks (roles/egress_allowlist/library/egress_allowlist_validate.py).

The Molecule scenario proves a wrong allowlist stops the role on a real host and changes
nothing; these cover every rule of the validator and the shape the templates render from.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]

_spec = importlib.util.spec_from_file_location(
    "egress_allowlist_validate", ROOT / "roles/egress_allowlist/library/egress_allowlist_validate.py")
assert _spec is not None and _spec.loader is not None
validator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(validator)

PREFIX = "weco-egress reject: "


def check(destinations: list, ssh_ports: list | None = None, log_prefix: str = PREFIX,
          log_per_minute: int = 10) -> dict:
    return validator.validate(destinations, [22] if ssh_ports is None else ssh_ports, log_prefix,
                              log_per_minute)


def one(**fields: object) -> dict:
    destination = {"name": "kms", "host": "10.0.1.10", "port": 443, "protocol": "tcp"}
    destination.update(fields)
    return destination


def refusal(destinations: list, **kwargs: object) -> str:
    with pytest.raises(validator.AllowlistError) as raised:
        check(destinations, **kwargs)
    return str(raised.value)


def test_normalises_addresses_ports_and_families() -> None:
    result = check([
        {"name": "dns", "host": "10.0.0.53", "port": 53, "protocol": "udp"},
        {"name": "siem", "host": "10.0.2.0/28", "port": ["6514", 514, "6000-6010", 514], "protocol": "tcp"},
        {"name": "mirror", "host": "2001:DB8:10::80", "port": " 8000 - 8010 ", "protocol": "tcp"},
    ], ssh_ports=[2222, "22", 22])
    assert result == {
        "destinations": [
            {"name": "dns", "family": 4, "network": "10.0.0.53/32", "protocol": "udp", "ports": [[53, 53]]},
            {"name": "siem", "family": 4, "network": "10.0.2.0/28", "protocol": "tcp",
             "ports": [[514, 514], [6000, 6010], [6514, 6514]]},
            {"name": "mirror", "family": 6, "network": "2001:db8:10::80/128", "protocol": "tcp",
             "ports": [[8000, 8010]]},
        ],
        "ssh_ports": [22, 2222],
    }


def test_an_empty_allowlist_is_the_strictest_policy_not_an_error() -> None:
    assert check([], ssh_ports=[]) == {"destinations": [], "ssh_ports": []}


@pytest.mark.parametrize("host", ["kms.example.com", "siem", "apt-mirror.internal."])
def test_hostnames_are_refused_with_the_reason(host: str) -> None:
    message = refusal([one(host=host)])
    assert message.startswith(f"egress_allowlist_destinations[0] (kms): host '{host}' is a hostname")
    assert "resolve a name once, when the rules load" in message
    assert "give the IP address or CIDR instead" in message


def test_cidr_with_host_bits_suggests_the_network() -> None:
    assert refusal([one(host="10.0.2.1/16")]) == (
        "egress_allowlist_destinations[0] (kms): host '10.0.2.1/16' has host bits set; "
        "did you mean 10.0.0.0/16?")


@pytest.mark.parametrize("host", ["10.0.0.300", "10.0.0.0/33", "2001:db8::/129", "10.0.0.1 10.0.0.2", "*"])
def test_malformed_addresses_are_refused(host: str) -> None:
    assert f"host '{host}' is not an IP address or CIDR" in refusal([one(host=host)])


@pytest.mark.parametrize(("port", "expected"), [
    (0, "port 0 is outside 1-65535"),
    (65536, "port 65536 is outside 1-65535"),
    ("70000", "port 70000 is outside 1-65535"),
    ("0-80", "port 0 is outside 1-65535"),
    ("9000-8000", "port range '9000-8000' runs backwards"),
    (True, "port True is not a port number"),
    ("https", "port 'https' is not a port number or a LOW-HIGH range"),
    (443.5, "port 443.5 is not a port number"),
    ([], "port list is empty"),
    ([443, "x"], "port 'x' is not a port number"),
])
def test_bad_ports_are_refused_naming_the_destination(port: object, expected: str) -> None:
    message = refusal([one(port=port)])
    assert message.startswith("egress_allowlist_destinations[0] (kms): ")
    assert expected in message


@pytest.mark.parametrize("protocol", ["icmp", "TCP", None, "sctp"])
def test_only_tcp_and_udp(protocol: object) -> None:
    assert f"protocol {protocol!r} must be one of tcp, udp" in refusal([one(protocol=protocol)])


@pytest.mark.parametrize("name", ['dns" accept comment "x', "dns server", "", "-dns", "x" * 64, None])
def test_names_that_could_break_a_rule_comment_are_refused(name: object) -> None:
    assert f"name {name!r} must be 1-63 letters" in refusal([one(name=name)])


def test_duplicate_names_are_refused() -> None:
    message = refusal([one(), one(host="10.0.1.11")])
    assert message == ("egress_allowlist_destinations[1] (kms): the name is used twice; "
                       "each destination needs its own")


@pytest.mark.parametrize(("missing", "expected"), [("host", "host is missing"), ("port", "port is missing")])
def test_missing_fields_are_named(missing: str, expected: str) -> None:
    destination = one()
    del destination[missing]
    assert refusal([destination]) == f"egress_allowlist_destinations[0] (kms): {expected}"


def test_a_destination_must_be_a_mapping() -> None:
    assert refusal([one(), "10.0.0.1:443"]) == (
        "egress_allowlist_destinations[1] is not a mapping of name, host, port and protocol")


@pytest.mark.parametrize(("ssh_ports", "expected"), [
    ([0], "egress_allowlist_ssh_ports: port 0 is outside 1-65535"),
    (["22-23"], "egress_allowlist_ssh_ports: give single ports, not the range '22-23'"),
])
def test_ssh_ports_are_single_valid_ports(ssh_ports: list, expected: str) -> None:
    assert refusal([], ssh_ports=ssh_ports) == expected


@pytest.mark.parametrize("prefix", ["", "x" * 30, 'egress" drop', "tab\there"])
def test_log_prefix_fits_both_backends(prefix: str) -> None:
    assert refusal([], log_prefix=prefix).startswith(f"egress_allowlist_log_prefix {prefix!r} must be 1-29")


@pytest.mark.parametrize("rate", [0, -1, 10001])
def test_log_rate_is_bounded(rate: int) -> None:
    assert refusal([], log_per_minute=rate) == f"egress_allowlist_log_per_minute {rate} must be 1-10000"
