"""One sealed audit row as the SIEM receives it, and back: RFC 5424 syslog messages
(with RFC 5425 octet-counting framing) and HTTP Event Collector style JSON objects.

Each message carries everything needed to recompute the row's chain MAC (RFC 2104
HMAC-SHA256, see control_api/audit/chain.py) from the message alone: the sequence
number, the previous MAC, the MAC, both key ids, the witness signature, and the signed
event JSON byte for byte. So a receiver (or `weco siem check`) detects a gap, a
duplicate, a reordering or an edit with the chain key and nothing else.

Syslog (RFC 5424 section 6): facility 13 ("log audit"); severity notice, warning for
`anomaly.*`, critical for events marked critical; MSGID is the action; one
SD-ELEMENT `weco@32473` carries the chain fields and the event's fields (32473 is the
private enterprise number RFC 5612 reserves for documentation); MSG is a UTF-8 BOM
then the event JSON. SD-PARAM values escape `"`, `\\` and `]` (section 6.3.3).
"""

from __future__ import annotations

import dataclasses
import json
import re

from control_api.audit.chain import canonical_json

SD_ID = "weco@32473"
FACILITY_AUDIT = 13
BOM = "\ufeff"
# Chain fields, then the event's own fields (checked against the event JSON).
CHAIN_PARAMS = ("seq", "mac", "prev_mac", "mac_key_id", "witness_key_id", "signature")
EVENT_PARAMS = ("id", "actor", "action", "target", "source_ip")


@dataclasses.dataclass(frozen=True)
class SealedRow:
    """What is forwarded of a row of audit_events."""

    seq: int
    mac: str
    prev_mac: str
    mac_key_id: str
    witness_key_id: str
    signature: str
    event_json: str

    def event(self) -> dict:
        return json.loads(self.event_json)


class MessageError(ValueError):
    """A received line is not a message of ours; str() says what is wrong."""


def _severity(event: dict) -> int:
    metadata = event.get("metadata")
    if isinstance(metadata, dict) and metadata.get("severity") == "critical":
        return 2
    return 4 if str(event.get("action", "")).startswith("anomaly.") else 5


def _printable(text: str, limit: int) -> str:
    """RFC 5424 header fields are PRINTUSASCII (33..126) only."""
    return (re.sub(r"[^\x21-\x7e]", "_", text) or "-")[:limit]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def to_syslog(row: SealedRow, hostname: str) -> bytes:
    """The RFC 5424 message for one row (without framing)."""
    event = row.event()
    params = {name: str(getattr(row, name)) for name in CHAIN_PARAMS}
    params.update({name: str(event.get(name, "")) for name in EVENT_PARAMS})
    sd = "[" + SD_ID + "".join(f' {name}="{_escape(value)}"' for name, value in params.items()) + "]"
    pri = FACILITY_AUDIT * 8 + _severity(event)
    header = (f"<{pri}>1 {event['time']} {_printable(hostname, 255)} weco - "
              f"{_printable(str(event['action']), 32)}")
    return f"{header} {sd} {BOM}{row.event_json}".encode()


def frame(message: bytes) -> bytes:
    """RFC 5425 section 4.3: MSG-LEN SP SYSLOG-MSG, the length in octets."""
    return str(len(message)).encode("ascii") + b" " + message


_HEADER = re.compile(r"<([0-9]{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ")
_PARAM = re.compile(r' ([^= \]"]{1,32})="((?:[^"\\\]]|\\["\\\]])*)"')


def from_syslog(text: str) -> tuple[SealedRow, dict]:
    """(row, the SD params) from one RFC 5424 message as written here."""
    header = _HEADER.match(text)
    if not header:
        raise MessageError("not an RFC 5424 message")
    position = header.end()
    if not text.startswith("[" + SD_ID, position):
        raise MessageError(f"no [{SD_ID} ...] structured data")
    position += 1 + len(SD_ID)
    params: dict[str, str] = {}
    while (param := _PARAM.match(text, position)) is not None:
        raw = param.group(2)
        params[param.group(1)] = re.sub(r"\\([\"\\\]])", r"\1", raw)
        position = param.end()
    if not text.startswith("] ", position):
        raise MessageError("the structured data is not closed")
    message = text[position + 2:].removeprefix(BOM)
    return _row(params, message), params


def to_hec(row: SealedRow, hostname: str) -> dict:
    """The object POSTed for one row (the HTTP Event Collector's event shape)."""
    fields = {name: getattr(row, name) for name in CHAIN_PARAMS}
    return {"time": row.event()["time"], "host": hostname, "source": "weco", "sourcetype": "weco:audit",
            "event": {**fields, "event_json": row.event_json}}


def from_hec(obj: object) -> tuple[SealedRow, dict]:
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), dict):
        raise MessageError("not an event object")
    fields = obj["event"]
    if not isinstance(fields.get("event_json"), str):
        raise MessageError("no event_json")
    return _row({k: str(v) for k, v in fields.items() if k in CHAIN_PARAMS}, fields["event_json"]), {}


def _row(params: dict[str, str], event_json: str) -> SealedRow:
    missing = [name for name in CHAIN_PARAMS if name not in params]
    if missing:
        raise MessageError(f"missing {', '.join(missing)}")
    if not re.fullmatch(r"[1-9][0-9]{0,18}", params["seq"]):
        raise MessageError(f"seq {params['seq']!r} is not a sequence number")
    return SealedRow(int(params["seq"]), params["mac"], params["prev_mac"], params["mac_key_id"],
                     params["witness_key_id"], params["signature"], event_json)


def event_params_agree(params: dict[str, str], event: dict) -> str | None:
    """None, or the first SD param that says something else than the signed event."""
    for name in EVENT_PARAMS:
        if name in params and params[name] != str(event.get(name, "")):
            return name
    return None


def canonical(event_json: str) -> bool:
    try:
        return canonical_json(json.loads(event_json)) == event_json
    except ValueError:
        return False
