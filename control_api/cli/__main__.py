"""`python -m control_api.cli`."""

import sys

from control_api.cli import main

sys.exit(main())
