"""``((vars.NAME))``, ``((secrets.NAME))`` and ``((env.NAME))`` placeholders.

A placeholder that is the whole string takes the variable's value with its type (a number stays a
number); inside a longer string the value is written as text. Conductor's own ``${...}`` expressions
are never touched. An undefined name is an error, never an empty string. Secrets are not resolved
here: their values are only read when a request is sent, so nothing offline can print them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from metasync.errors import did_you_mean

PLACEHOLDER = re.compile(r"\(\(\s*(vars|secrets|env)\.([A-Za-z_][A-Za-z0-9_.-]*)\s*\)\)")


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A placeholder that could not be resolved, and where."""

    path: tuple[str | int, ...]
    message: str
    hint: str


# lookup(namespace, name) -> value; raises LookupError(message, hint) when undefined
Lookup = Callable[[str, str], Any]


def substitute(
    data: Any, lookup: Lookup, problems: list[Unresolved], path: tuple[str | int, ...] = ()
) -> Any:
    """Return ``data`` with placeholders replaced; record what could not be resolved."""
    if isinstance(data, str):
        return _substitute_str(data, lookup, problems, path) if "((" in data else data
    if isinstance(data, dict):
        return {
            key: substitute(value, lookup, problems, (*path, key)) for key, value in data.items()
        }
    if isinstance(data, list):
        return [substitute(item, lookup, problems, (*path, i)) for i, item in enumerate(data)]
    return data


def _substitute_str(
    text: str, lookup: Lookup, problems: list[Unresolved], path: tuple[str | int, ...]
) -> Any:
    whole = PLACEHOLDER.fullmatch(text.strip())
    if whole is not None:
        try:
            return lookup(whole.group(1), whole.group(2))
        except LookupError as exc:
            problems.append(Unresolved(path, *exc.args))
            return text

    def one(match: re.Match[str]) -> str:
        try:
            value = lookup(match.group(1), match.group(2))
        except LookupError as exc:
            problems.append(Unresolved(path, *exc.args))
            return match.group(0)
        if isinstance(value, (dict, list)):
            problems.append(
                Unresolved(
                    path,
                    f"{match.group(0)} is a {'map' if isinstance(value, dict) else 'list'} and cannot "
                    "be placed inside a longer string",
                    "Use the placeholder as the whole value, or make the variable a plain value.",
                )
            )
            return match.group(0)
        return value if isinstance(value, str) else json.dumps(value)

    return PLACEHOLDER.sub(one, text)


def manifest_lookup(
    env_name: str, variables: Mapping[str, Any], secrets: Mapping[str, str], env_file: str
) -> Lookup:
    """Resolve placeholders in manifests and overlays for one environment."""

    def lookup(namespace: str, name: str) -> Any:
        if namespace == "vars":
            if name in variables:
                return variables[name]
            raise LookupError(
                f"undefined variable ((vars.{name})) for environment {env_name!r}",
                f"Define it under `vars:` in {env_file}" + _close(name, variables),
            )
        if namespace == "secrets":
            if name in secrets:
                return f"((secrets.{name}))"  # resolved only when sent to the server
            raise LookupError(
                f"undefined secret ((secrets.{name})) for environment {env_name!r}",
                f"Map it to a process environment variable under `secrets:` in {env_file}"
                + _close(name, secrets),
            )
        raise LookupError(
            f"((env.{name})) can only be used in environment.yaml",
            f"Set a variable in {env_file} from it (vars: {{{name.lower()}: ((env.{name}))}}) "
            f"and use ((vars.{name.lower()})) here.",
        )

    return lookup


def unresolved_lookup(namespace: str, name: str) -> Any:
    """For manifests read without an environment: every placeholder is undefined."""
    raise LookupError(
        f"((vars.{name})) cannot be resolved without an environment"
        if namespace == "vars"
        else f"(({namespace}.{name})) cannot be resolved without an environment",
        "Create environments/<env>/environment.yaml with the variables, or pass --env.",
    )


def _close(name: str, known: Mapping[str, Any]) -> str:
    return did_you_mean(name, known) or "."
