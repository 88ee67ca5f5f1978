"""Name rules of the checks.

The Kubernetes API server's rules (apimachinery ``pkg/util/validation``), with its own
messages so a finding reads as ``kubectl apply`` would answer: DNS-1123 labels and
subdomains for object names, qualified names for label and annotation keys, label values.
Interface names and the names in the networks annotation are Multus's rules
(:mod:`multihome.multus.validate`), so both judge a name alike.
"""

from __future__ import annotations

import re

from multihome.multus.validate import dns1123_label_problem
from multihome.multus.validate import ifname_problem as _multus_ifname_problem

__all__ = [
    "annotation_keys_problems",
    "dns1123_label_problem",
    "dns1123_subdomain_problem",
    "ifname_problem",
    "label_value_problems",
    "qualified_name_problems",
    "rfc1123_label_problems",
    "rfc1123_subdomain_problems",
]

LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
SUBDOMAIN_FMT = LABEL_FMT + r"(\." + LABEL_FMT + ")*"
QUALIFIED_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_FMT + ")?"
LABEL_MAX = 63
SUBDOMAIN_MAX = 253
ANNOTATIONS_MAX_BYTES = 256 * 1024

_LABEL = re.compile(LABEL_FMT)
_SUBDOMAIN = re.compile(SUBDOMAIN_FMT)
_QUALIFIED = re.compile(QUALIFIED_FMT)
_LABEL_VALUE = re.compile(LABEL_VALUE_FMT)


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """apimachinery's ``RegexError``: the rule, examples and the regex."""
    shown = "".join(f"'{e}', " if i == 0 else f"or '{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


LABEL_RULE = _regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
    LABEL_FMT,
    "my-name",
    "123-abc",
)
SUBDOMAIN_RULE = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character",
    SUBDOMAIN_FMT,
    "example.com",
)
QUALIFIED_RULE = _regex_error(
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character",
    QUALIFIED_FMT,
    "MyName",
    "my.name",
    "123-abc",
)
LABEL_VALUE_RULE = _regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character",
    LABEL_VALUE_FMT,
    "MyValue",
    "my_value",
    "12345",
)


def _max_len(length: int) -> str:
    return f"must be no more than {length} characters"


def rfc1123_label_problems(name: str) -> list[str]:
    """apimachinery ``IsDNS1123Label``: what is wrong with ``name`` (empty: nothing)."""
    problems = [_max_len(LABEL_MAX)] if len(name) > LABEL_MAX else []
    if not _LABEL.fullmatch(name):
        problems.append(LABEL_RULE)
    return problems


def rfc1123_subdomain_problems(name: str) -> list[str]:
    """apimachinery ``IsDNS1123Subdomain``."""
    problems = [_max_len(SUBDOMAIN_MAX)] if len(name) > SUBDOMAIN_MAX else []
    if not _SUBDOMAIN.fullmatch(name):
        problems.append(SUBDOMAIN_RULE)
    return problems


def qualified_name_problems(name: str) -> list[str]:
    """apimachinery ``IsQualifiedName``: label and annotation keys, ``[prefix/]name``."""
    parts = name.split("/")
    if len(parts) == 1:
        prefix, short = "", parts[0]
    elif len(parts) == 2:
        prefix, short = parts
        if not prefix:
            return ["prefix part must be non-empty"]
    else:
        return [
            _regex_error(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                QUALIFIED_FMT,
                "MyName",
                "my.name",
                "123-abc",
            )
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    problems = []
    if prefix:
        problems += [f"prefix part {p}" for p in rfc1123_subdomain_problems(prefix)]
    if not short:
        problems.append("name part must be non-empty")
    else:
        if len(short) > LABEL_MAX:
            problems.append("name part " + _max_len(LABEL_MAX))
        if not _QUALIFIED.fullmatch(short):
            problems.append(QUALIFIED_RULE)
    return problems


def label_value_problems(value: str) -> list[str]:
    """apimachinery ``IsValidLabelValue``."""
    problems = [_max_len(LABEL_MAX)] if len(value) > LABEL_MAX else []
    if not _LABEL_VALUE.fullmatch(value):
        problems.append(LABEL_VALUE_RULE)
    return problems


def annotation_keys_problems(annotations: dict[str, str]) -> list[tuple[str, str]]:
    """apimachinery ``ValidateAnnotations``: (key, problem) for bad keys (checked lower-cased,
    as the API server does), and ("", problem) when all of them are too large together."""
    found = [(k, p) for k in annotations for p in qualified_name_problems(k.lower())]
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        found.append(("", f"may not be more than {ANNOTATIONS_MAX_BYTES} bytes"))
    return found


def dns1123_subdomain_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS-1123 subdomain, as one phrase (None: it is one)."""
    if not name:
        return "must not be empty"
    problems = rfc1123_subdomain_problems(name)
    return "; ".join(problems) if problems else None


def ifname_problem(name: str) -> str | None:
    """Why ``name`` can't be a network interface name: Multus's rules, and no NUL byte (a C
    string ends there: netlink would make another name than the one written)."""
    if "\0" in name:
        return "must not contain a NUL byte"
    return _multus_ifname_problem(name)
