"""Self-update, the control plane's half: receive a signed release bundle, keep it, and ask
the root side to apply it.

An upload is a raw `application/gzip` body (the tarball), streamed to FF_DATA_DIR/updates
under FF_MAX_RELEASE_MB and hashed as it goes, with its .minisig (base64) in the
X-Weco-Signature header. It is verified as install.sh verifies it (verify.py); a bundle
that passes is kept as updates/weco-V.tar.gz and .minisig with a `releases` row. Any
refusal leaves nothing behind and is audited (release.refused).

Applying writes updates/apply.json ({id, version, sha256}) for weco-update.path, which
starts the root unit that runs `weco release apply-pending` (release/apply.py). That side
trusts nothing this one writes: it copies, verifies and checks everything again.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from pathlib import Path
from typing import BinaryIO

import peewee

from control_api import upload
from control_api.audit.log import Actor, AuditLog
from control_api.body import BodyTooLarge, InvalidRequest, UnsupportedMediaType
from control_api.clock import SystemClock
from control_api.errors import ApiError, Conflict, NotFound
from control_api.models import User
from control_api.release import minisign, verify
from control_api.release.models import Release

MEDIA_TYPE = "application/gzip"
SIGNATURE_HEADER = "X-Weco-Signature"
SIGNATURE_MAX = 4096  # base64 characters; a .minisig is four short lines (about 400 bytes)
REQUEST_FILE = "apply.json"
APPLICABLE = ("received", "failed")  # a failed upgrade may be asked again


class ReleaseTooLarge(BodyTooLarge):
    title = "Release too large"


def decode_signature(header: str | None) -> str:
    """The .minisig text from the header, checked for form (not yet for validity)."""
    if not header:
        raise InvalidRequest(f"send the bundle's .minisig, base64-encoded, in the {SIGNATURE_HEADER} header")
    try:
        if len(header) > SIGNATURE_MAX:
            raise ValueError
        text = base64.b64decode(header, validate=True).decode("utf-8")
        minisign.parse_signature(text)
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        raise InvalidRequest(f"{SIGNATURE_HEADER} must be the base64 of a minisign .minisig file "
                             f"(at most {SIGNATURE_MAX} characters)") from None
    except minisign.SignatureError as error:
        raise InvalidRequest(f"{SIGNATURE_HEADER}: {error}") from None
    return text


def _write_atomically(path: Path, data: bytes) -> None:
    part = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        with open(part, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def find_release(release_id: int) -> Release:
    row = Release.get_or_none(Release.id == release_id)
    if row is None:
        raise NotFound(f"there is no release {release_id}", title="No such release")
    return row


def approval_params(release_id: int) -> dict:
    """What an approval of release.apply is bound to: the row and the exact bundle it holds."""
    return {"release_id": release_id, "sha256": find_release(release_id).sha256}


class ReleaseUpdates:
    def __init__(self, audit: AuditLog, clock: SystemClock, directory: Path, public_key: str,
                 max_bytes: int, running: str) -> None:
        self.audit, self.clock, self.directory = audit, clock, directory
        self.public_key, self.max_bytes, self.running = public_key, max_bytes, running

    @property
    def request_file(self) -> Path:
        return self.directory / REQUEST_FILE

    # -- receiving ----------------------------------------------------------------------

    def receive(self, stream: BinaryIO, media_type: str, signature_header: str | None, user: User,
                actor: Actor) -> Release:
        facts: dict = {}
        try:
            return self._receive(stream, media_type, signature_header, user, actor, facts)
        except ApiError as refusal:
            self.audit.record_alone(actor, "release.refused", "releases",
                                    {"reason": refusal.description, **facts})
            raise

    def _receive(self, stream, media_type, signature_header, user, actor, facts: dict) -> Release:
        if not self.public_key:  # before reading a byte
            raise verify.SelfUpdateOff()
        if media_type != MEDIA_TYPE:
            raise UnsupportedMediaType(f"send the release bundle (weco-V.tar.gz) as a raw {MEDIA_TYPE} body")
        signature = decode_signature(signature_header)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = self.directory / f".upload-{secrets.token_hex(8)}"
        limit_mb = self.max_bytes >> 20
        try:
            digest, size = upload.receive(stream, part, self.max_bytes, lambda: ReleaseTooLarge(
                f"a release bundle must be at most {limit_mb} MiB (FF_MAX_RELEASE_MB)"))
            facts.update(sha256=digest, size=size)
            signed = verify.verify(self.public_key, part, signature, digest)
            facts.update(version=signed.version, tag=signed.tag)
            verify.check_newer(signed.version, self.running)
            return self._keep(part, signature, signed, user, actor)
        finally:
            part.unlink(missing_ok=True)

    def _keep(self, part: Path, signature: str, signed: verify.Signed, user: User, actor: Actor) -> Release:
        tarball = self.directory / signed.tarball_name
        placed: list[Path] = []
        try:
            with self.audit.mutation():
                # The row first: a concurrent upload of the same version waits on its unique
                # index here, and so never replaces the files this one places.
                row = Release.create(version=signed.version, sha256=signed.sha256, tag=signed.tag,
                                     state="received", received_by=user, received_at=self.clock.now())
                self.audit.record(actor, "release.received", f"release:{row.id}",
                                  {"version": signed.version, "sha256": signed.sha256, "tag": signed.tag})
                placed.append(Path(f"{tarball}.minisig"))
                _write_atomically(placed[-1], signature.encode("utf-8"))
                placed.append(tarball)
                os.replace(part, tarball)
        except peewee.IntegrityError:
            raise Conflict(f"release {signed.version} was already received") from None
        except BaseException:
            for path in placed:
                path.unlink(missing_ok=True)
            raise
        return row

    # -- reading ------------------------------------------------------------------------

    def find(self, release_id: int) -> Release:
        return find_release(release_id)

    def recent(self, limit: int) -> list[Release]:
        return list(Release.select().order_by(Release.id.desc()).limit(limit))

    # -- asking the root side to apply one ------------------------------------------------

    def request_apply(self, release_id: int, user: User, actor: Actor) -> Release:
        row = self.find(release_id)
        if row.state not in APPLICABLE:
            raise Conflict(f"release {row.version} is {row.state}: only a received or failed one is applied")
        waiting = Release.get_or_none(Release.state == "apply_requested")
        if waiting is not None or self.request_file.exists():
            raise Conflict(f"an upgrade is already waiting to be applied"
                           f"{f' (release {waiting.version})' if waiting else ''}")
        verify.check_newer(row.version, self.running)  # another may have been applied since
        tarball = self.directory / verify.tarball_name(row.version)
        if not (tarball.is_file() and Path(f"{tarball}.minisig").is_file()):
            raise Conflict(f"the bundle of release {row.version} is no longer in {self.directory}: "
                           "upload it again")
        request = {"id": row.id, "version": row.version, "sha256": row.sha256}
        try:
            with self.audit.mutation():
                moved = (Release.update(state="apply_requested", apply_requested_by=user,
                                        apply_requested_at=self.clock.now(), finished_at=None, error=None)
                         .where(Release.id == row.id, Release.state.in_(APPLICABLE)).execute())
                if moved != 1:
                    raise Conflict(f"release {row.version} changed meanwhile: read it again")
                self.audit.record(actor, "release.apply_requested", f"release:{row.id}",
                                  {"version": row.version, "sha256": row.sha256})
                # Last, so a refusal above leaves no request behind (under four-eyes the
                # commit comes just after, with the approval's; the root side reads no row).
                _write_atomically(self.request_file, json.dumps(request).encode())
        except BaseException:
            if not Release.select().where(Release.id == row.id, Release.state == "apply_requested").exists():
                self.request_file.unlink(missing_ok=True)
            raise
        return self.find(row.id)
