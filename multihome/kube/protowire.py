"""Just enough of the API's protobuf encoding to read what kubectl's typed commands send
(``kubectl create namespace`` posts ``application/vnd.kubernetes.protobuf`` and does not
fall back to JSON): the ``k8s\\0`` envelope (a ``runtime.Unknown`` with the TypeMeta and the
object's bytes) and an object's ObjectMeta (name, generateName, namespace, labels,
annotations), field numbers as in apimachinery's ``generated.proto``. Objects with more
than metadata to read (a Deployment's spec) are not decoded: the caller answers 415."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


class ProtoError(ValueError):
    pass


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ProtoError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value: int or bytes) of one message."""
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, at = _varint(data, at)
            yield number, wire, value
        elif wire == 2:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise ProtoError("truncated field")
            yield number, wire, data[at : at + size]
            at += size
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise ProtoError(f"unsupported wire type {wire}")


def _text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise ProtoError("expected a string")
    return value.decode()


def _meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace"}
    for number, _, value in fields(data):
        if number in names:
            meta[names[number]] = _text(value)
        elif number in (11, 12):
            entry = {n: _text(v) for n, _, v in fields(value)}
            meta.setdefault("labels" if number == 11 else "annotations", {})[entry.get(1, "")] = (
                entry.get(2, "")
            )
    return meta


def decode(raw: bytes, kinds: tuple[str, ...]) -> dict[str, Any]:
    """The object in a protobuf body, when its kind is one of ``kinds`` (whose bodies
    carry only metadata worth reading); ``ProtoError`` otherwise."""
    if not raw.startswith(MAGIC):
        raise ProtoError("the body has no protobuf envelope")
    type_meta: dict[int, str] = {}
    inner = b""
    for number, _, value in fields(raw[len(MAGIC) :]):
        if number == 1:
            type_meta = {n: _text(v) for n, _, v in fields(value)}
        elif number == 2:
            inner = value
    kind = type_meta.get(2, "")
    if kind not in kinds:
        raise ProtoError(f"a {kind or 'object'} in protobuf is not read by the lab's API")
    obj: dict[str, Any] = {"apiVersion": type_meta.get(1, ""), "kind": kind, "metadata": {}}
    for number, _, value in fields(inner):
        if number == 1:
            obj["metadata"] = _meta(value)
    return obj
