"""Runs `weco worker` with the credential rotation's checkpoint replaced: the worker
SIGKILLs itself right after the step named by the first argument ("none": never).
Used as a subprocess by the rotation tests, to kill a worker at each step."""

import os
import signal
import sys

from control_api import cli
from control_api.hosts import rotation

STEP = sys.argv[1]


def kill_at(step: str) -> None:
    if step == STEP:
        os.kill(os.getpid(), signal.SIGKILL)


rotation.checkpoint = kill_at
sys.exit(cli.main(sys.argv[2:]))
