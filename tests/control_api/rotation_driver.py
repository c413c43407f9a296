"""Runs `weco` with one extra encrypted column registered: the table the rotation
tests create. Used as a subprocess, so that a test can kill it mid-rotation."""

import sys

from control_api import cli
from control_api.encrypted_columns import ENCRYPTED_COLUMNS, EncryptedColumn

ENCRYPTED_COLUMNS.append(EncryptedColumn("secret_notes", "body"))
sys.exit(cli.main(sys.argv[1:]))
