"""Validate and normalise the egress allowlist before any rule is written.

Owns the checks the role's argument spec cannot express: addresses and CIDRs (never
hostnames), port numbers and ranges, destination names safe to use as rule comments,
the SSH reply ports and the log prefix. It changes nothing on the host; it returns the
destinations in one shape the rule templates can render for nftables and iptables.
"""

from __future__ import annotations

import ipaddress
import re

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: egress_allowlist_validate
short_description: Validate and normalise egress allowlist destinations (changes nothing)
options:
  destinations:
    description: List of {name, host, port, protocol}; host an IP address or CIDR, port an int,
      a "LOW-HIGH" range, or a list of those.
    type: list
    elements: raw
    required: true
  ssh_ports:
    description: Local ports of sshd whose replies are always let out.
    type: list
    elements: raw
    default: []
  log_prefix:
    description: Prefix of logged rejections.
    type: str
    default: "weco-egress reject: "
  log_per_minute:
    description: Most rejections logged a minute.
    type: int
    default: 10
"""

RETURN = r"""
destinations:
  description: The destinations, each with family (4 or 6), network (CIDR), protocol and ports
    (a list of [low, high] pairs).
  type: list
  returned: success
ssh_ports:
  description: The SSH ports as integers.
  type: list
  returned: success
"""

# Destination names become rule comments in nft and iptables: keep them to characters that
# need no quoting in either, so a name can never break out of the comment.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# iptables' LOG target caps the prefix at 29 characters; the same limit keeps both backends equal.
LOG_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9 _:.-]{1,29}$")
HOSTNAME_PATTERN = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$")
PROTOCOLS = ("tcp", "udp")


class AllowlistError(ValueError):
    """One wrong setting, described so the operator knows which and why."""


def parse_port(value: object, where: str) -> tuple[int, int]:
    """One port or "LOW-HIGH" range as an inclusive (low, high) pair."""
    if isinstance(value, bool):
        raise AllowlistError(f"{where}: port {value!r} is not a port number")
    if isinstance(value, int):
        low = high = value
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        low = high = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", value):
        low, high = (int(part) for part in value.split("-"))
    else:
        raise AllowlistError(
            f"{where}: port {value!r} is not a port number or a LOW-HIGH range such as '8000-8010'"
        )
    for number in (low, high):
        if not 1 <= number <= 65535:
            raise AllowlistError(f"{where}: port {number} is outside 1-65535")
    if low > high:
        raise AllowlistError(f"{where}: port range {value!r} runs backwards (low end first)")
    return low, high


def parse_ports(value: object, where: str) -> list[list[int]]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise AllowlistError(f"{where}: port list is empty; give at least one port")
    ports = sorted({parse_port(item, where) for item in items})
    return [list(pair) for pair in ports]


def parse_host(value: object, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text = str(value).strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        if HOSTNAME_PATTERN.match(text):
            raise AllowlistError(
                f"{where}: host {text!r} is a hostname. nft and iptables resolve a name once, when "
                "the rules load, so a later change of address would silently break or widen the "
                "allowlist: give the IP address or CIDR instead (one destination per address)"
            ) from None
        if "/" in text and "host bits" in str(error):
            network = ipaddress.ip_network(text, strict=False)
            raise AllowlistError(
                f"{where}: host {text!r} has host bits set; did you mean {network}?"
            ) from None
        raise AllowlistError(f"{where}: host {text!r} is not an IP address or CIDR ({error})") from None


def normalise_destination(index: int, destination: object, seen: set[str]) -> dict:
    where = f"egress_allowlist_destinations[{index}]"
    if not isinstance(destination, dict):
        raise AllowlistError(f"{where} is not a mapping of name, host, port and protocol")
    name = destination.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise AllowlistError(
            f"{where}: name {name!r} must be 1-63 letters, digits, '_', '.' or '-' "
            "(it becomes the rule's comment)"
        )
    where = f"{where} ({name})"
    if name in seen:
        raise AllowlistError(f"{where}: the name is used twice; each destination needs its own")
    seen.add(name)
    protocol = destination.get("protocol")
    if protocol not in PROTOCOLS:
        raise AllowlistError(f"{where}: protocol {protocol!r} must be one of {', '.join(PROTOCOLS)}")
    if destination.get("host") in (None, ""):
        raise AllowlistError(f"{where}: host is missing")
    if destination.get("port") in (None, ""):
        raise AllowlistError(f"{where}: port is missing")
    network = parse_host(destination["host"], where)
    return {
        "name": name,
        "family": network.version,
        "network": str(network),
        "protocol": protocol,
        "ports": parse_ports(destination["port"], where),
    }


def validate(destinations: list, ssh_ports: list, log_prefix: str, log_per_minute: int) -> dict:
    """The normalised settings, or AllowlistError naming the first wrong one."""
    seen: set[str] = set()
    normalised = [normalise_destination(i, d, seen) for i, d in enumerate(destinations)]
    ports = set()
    for port in ssh_ports:
        low, high = parse_port(port, "egress_allowlist_ssh_ports")
        if low != high:
            raise AllowlistError(f"egress_allowlist_ssh_ports: give single ports, not the range {port!r}")
        ports.add(low)
    if not LOG_PREFIX_PATTERN.match(log_prefix):
        raise AllowlistError(
            f"egress_allowlist_log_prefix {log_prefix!r} must be 1-29 letters, digits, spaces or '_:.-'"
        )
    if not 1 <= log_per_minute <= 10000:
        raise AllowlistError(f"egress_allowlist_log_per_minute {log_per_minute} must be 1-10000")
    return {"destinations": normalised, "ssh_ports": sorted(ports)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "destinations": {"type": "list", "elements": "raw", "required": True},
            "ssh_ports": {"type": "list", "elements": "raw", "default": []},
            "log_prefix": {"type": "str", "default": "weco-egress reject: "},
            "log_per_minute": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = validate(params["destinations"], params["ssh_ports"], params["log_prefix"],
                          params["log_per_minute"])
    except AllowlistError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
