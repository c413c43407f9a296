"""A run's inventory and extra variables, written for Ansible as data that is never a
template.

Ansible renders Jinja in the strings of inventories and extra variables it loads (its
own documentation: "Unsafe or raw strings"). Everything here came from an admin or a
store row, so each string is written with YAML's `!unsafe` tag, which Ansible loads as
a value it never renders: a stray `{{ lookup('pipe', ...) }}` stays text. Values are
checked before they get here (the API, then the worker); this is the layer that holds
if a check ever has a hole.
"""

from __future__ import annotations

from pathlib import Path

import yaml


class _Unsafe(str):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


def _marked(value: object) -> object:
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, dict):
        # Keys are host and variable names, which Ansible does not render.
        return {str(key): _marked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_marked(item) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} cannot be handed to Ansible")


def unsafe_yaml(data: dict) -> str:
    return yaml.dump(_marked(data), Dumper=_Dumper, default_flow_style=False, sort_keys=True)


def write_unsafe_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(unsafe_yaml(data))
    path.chmod(0o600)
    return path
