"""True/False on the wire, one way: how every endpoint reads a boolean parameter, and how it
answers one. Data Lab's clients send `True` / `False` and read `True` / `False` back."""

from __future__ import annotations

from starbox.errors import StarboxError

TRUE = ("true", "t", "1", "yes", "y", "on")
FALSE = ("false", "f", "0", "no", "n", "off")


def parse(value, default: bool = False, param: str = "value") -> bool:
    """A boolean parameter; absent, empty or Python's `None` is the default, anything else that
    is not a boolean spelling is a 400 naming the parameter."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise StarboxError(f"Error: {param} must be True or False, not {value!r}")


def answer(value: bool) -> str:
    return "True" if value else "False"
