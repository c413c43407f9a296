"""What the command line accepts: a parser whose errors are one line, and argument
types bounded to what the store and the standard library can hold, so a bad value is
refused here (exit 2) rather than failing deep inside a command."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from control_api.settings import SPECS

STORE_ID_MAX = 2**63 - 1  # ids are 64-bit signed integers on both backends


class Parser(argparse.ArgumentParser):
    """argparse, with an error on one line (and a pointer to --help) instead of the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not between {low} and {high}")
        return value

    return parse


def store_id(text: str) -> int:
    return bounded_int(1, STORE_ID_MAX)(text)


def seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not between {low:g} and {high:g}")
        return value

    return parse


def like_setting(name: str) -> Callable[[str], object]:
    """An option that overrides a setting accepts what the setting does."""
    spec = next(spec for spec in SPECS if spec.name == name)

    def parse(text: str) -> object:
        try:
            return spec.parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: expected {spec.allowed} "
                                             f"(as for {name})") from None

    return parse


def first_non_utf8(argv: list[str]) -> str | None:
    """The first argument that is not valid UTF-8, escaped for printing, or None. (Python
    hands such bytes over as surrogates, which no store or log line should see.)"""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return repr(arg.encode("utf-8", "surrogateescape"))
    return None
