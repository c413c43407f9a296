"""`weco siem check`'s judgement of a received stream: duplicates pass, and a gap, a
reordering, an edit, a forged field or another key each fail at their line."""

from __future__ import annotations

import json

from control_api.audit.chain import GENESIS_MAC, ChainKey, canonical_json
from control_api.siem.check import check_stream
from control_api.siem.message import SealedRow, frame, from_syslog, to_hec, to_syslog

KEY = ChainKey(b"k" * 32)


def rows(count: int) -> list[SealedRow]:
    out, prev = [], GENESIS_MAC
    for seq in range(1, count + 1):
        event = canonical_json({"id": f"e{seq}", "time": "2027-01-01T00:00:00.000000Z", "actor": 'a"]\\',
                                "action": "site.create", "target": f"site:{seq}", "source_ip": "",
                                "user_agent": "", "metadata": {"note": "line\u2028sep"}})
        mac = KEY.mac(seq, prev, "wk", "sig", event)
        out.append(SealedRow(seq, mac, prev, KEY.key_id, "wk", "sig", event))
        prev = mac
    return out


def lines(texts: list[str]) -> list[tuple[int, str]]:
    return list(enumerate(texts, 1))


def syslog(row: SealedRow) -> str:
    return to_syslog(row, "host").decode()


def test_a_whole_stream_with_duplicates_is_ok_in_both_formats():
    chain = rows(5)
    texts = [syslog(r) for r in chain[:3]] + [syslog(r) for r in chain[1:]]  # 2 and 3 re-sent
    report = check_stream(lines(texts), [KEY])
    assert report.ok and (report.rows, report.duplicates, report.last_seq) == (5, 2, 5)
    hec = [json.dumps(to_hec(r, "host")) for r in chain]
    assert check_stream(lines(hec), [KEY]).ok


def test_a_gap_a_reordering_and_a_late_start_fail_at_their_line():
    chain = [syslog(r) for r in rows(4)]
    gap = check_stream(lines([chain[0], chain[2]]), [KEY])
    assert gap.failure == "line 2: gap: row 2 missing (found row 3)"
    assert "gap: row 2 missing" in check_stream(lines([chain[0], chain[2], chain[1]]), [KEY]).failure
    assert check_stream(lines(chain[1:]), [KEY]).failure == "line 1: gap: row 1 missing (found row 2)"
    assert check_stream(lines(chain[1:]), [KEY], first_seq=2).ok


def test_an_edit_a_forged_field_or_another_key_fail():
    chain = rows(2)
    edited = syslog(chain[0]).replace("site:1", "site:9")
    assert "MAC does not recompute" in check_stream(lines([edited]), [KEY]).failure
    forged = syslog(chain[0]).replace('target="site:1"', 'target="site:7"')
    assert "structured data's target" in check_stream(lines([forged]), [KEY]).failure
    assert "was not given" in check_stream(lines([syslog(chain[0])]), [ChainKey(b"o" * 32)]).failure
    assert "unreadable" in check_stream(lines(["garbage"]), [KEY]).failure


def test_hostile_text_survives_the_syslog_round_trip_and_framing_counts_octets():
    row = rows(1)[0]
    message = to_syslog(row, "h o\u00e9st")
    parsed, params = from_syslog(message.decode())
    assert parsed == row and params["actor"] == 'a"]\\'
    assert b"\n" not in message
    assert frame(message) == str(len(message)).encode() + b" " + message
