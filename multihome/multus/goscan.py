"""Go's ``encoding/json`` syntax check (its scanner), for Multus's exact error words.

``json.Unmarshal`` checks the whole input before decoding anything and stops at the first
byte that can't continue a JSON text, with messages such as ``invalid character 'x'
looking for beginning of value`` or ``unexpected end of JSON input``; nesting deeper than
10000 is ``exceeded max depth``. :func:`syntax_error` returns that message, or None for a
valid text. It walks the UTF-8 bytes, as Go does (a non-ASCII byte is shown as the Latin-1
character of that byte).
"""

from __future__ import annotations

from multihome.multus.validate import go_quote

MAX_DEPTH = 10000
_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = b'bfnrt\\/"'
_OBJECT_KEY, _OBJECT_VALUE, _ARRAY_VALUE = range(3)


class _Bad(Exception):
    pass


def _char(c: int) -> str:
    """Go's quoteChar."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    return "'" + go_quote(chr(c))[1:-1] + "'"


def syntax_error(text: str) -> tuple[str, int] | None:
    """Go's ``checkValid`` message for ``text`` and the byte offset it stopped at, or None
    when it is valid JSON."""
    data = text.encode("utf-8", "surrogatepass")
    stack: list[int] = []
    state = "begin_value"
    literal = b""
    offset = 0
    try:
        for offset, c in enumerate(data):  # noqa: B007 (offset is used after the loop)
            state, literal = _step(state, c, stack, literal)
        offset = len(data)
        if state != "end_top":
            state, literal = _step(state, ord(" "), stack, literal)
        if state != "end_top":
            return "unexpected end of JSON input", offset
    except _Bad as bad:
        return str(bad), offset
    return None


def _fail(c: int, context: str) -> _Bad:
    return _Bad(f"invalid character {_char(c)} {context}")


def _push(stack: list[int], kind: int) -> None:
    stack.append(kind)
    if len(stack) > MAX_DEPTH:
        raise _Bad("exceeded max depth")


def _step(state: str, c: int, stack: list[int], literal: bytes) -> tuple[str, bytes]:
    if state in ("begin_value", "begin_value_or_empty"):
        if c in _SPACE:
            return state, literal
        if state == "begin_value_or_empty" and c == ord("]"):
            return _end_value(c, stack)
        if c == ord("{"):
            _push(stack, _OBJECT_KEY)
            return "begin_string_or_empty", literal
        if c == ord("["):
            _push(stack, _ARRAY_VALUE)
            return "begin_value_or_empty", literal
        if c == ord('"'):
            return "in_string", literal
        if c == ord("-"):
            return "neg", literal
        if c == ord("0"):
            return "zero", literal
        if c in b"123456789":
            return "one", literal
        for word in (b"true", b"false", b"null"):
            if c == word[0]:
                return "literal", word[:1] + word[1:]  # first letter names the word
        raise _fail(c, "looking for beginning of value")
    if state in ("begin_string_or_empty", "begin_string"):
        if c in _SPACE:
            return state, literal
        if state == "begin_string_or_empty" and c == ord("}"):
            stack[-1] = _OBJECT_VALUE
            return _end_value(c, stack)
        if c == ord('"'):
            return "in_string", literal
        raise _fail(c, "looking for beginning of object key string")
    if state == "in_string":
        if c == ord('"'):
            return "end_value", literal
        if c == ord("\\"):
            return "in_string_esc", literal
        if c < 0x20:
            raise _fail(c, "in string literal")
        return state, literal
    if state == "in_string_esc":
        if c in _ESCAPES:
            return "in_string", literal
        if c == ord("u"):
            return "esc_u", b"4"
        raise _fail(c, "in string escape code")
    if state == "esc_u":
        if c not in _HEX:
            raise _fail(c, "in \\u hexadecimal character escape")
        left = int(literal) - 1
        return ("in_string", b"") if left == 0 else ("esc_u", str(left).encode())
    if state == "neg":
        if c == ord("0"):
            return "zero", literal
        if c in b"123456789":
            return "one", literal
        raise _fail(c, "in numeric literal")
    if state == "one":
        if c in _DIGITS:
            return state, literal
        return _step("zero", c, stack, literal)
    if state == "zero":
        if c == ord("."):
            return "dot", literal
        if c in b"eE":
            return "exp", literal
        return _end_value(c, stack)
    if state == "dot":
        if c in _DIGITS:
            return "dot0", literal
        raise _fail(c, "after decimal point in numeric literal")
    if state == "dot0":
        if c in _DIGITS:
            return state, literal
        if c in b"eE":
            return "exp", literal
        return _end_value(c, stack)
    if state == "exp":
        if c in b"+-":
            return "exp_sign", literal
        return _step("exp_sign", c, stack, literal)
    if state == "exp_sign":
        if c in _DIGITS:
            return "exp0", literal
        raise _fail(c, "in exponent of numeric literal")
    if state == "exp0":
        if c in _DIGITS:
            return state, literal
        return _end_value(c, stack)
    if state == "literal":
        # literal: the word's first letter, then the letters still expected
        if c != literal[1]:
            name = _WORDS[literal[0]]
            raise _fail(c, f"in literal {name} (expecting {_char(literal[1])})")
        rest = literal[2:]
        return ("end_value", b"") if not rest else ("literal", literal[:1] + rest)
    if state == "end_value":
        return _end_value(c, stack)
    if state == "end_top":
        if c not in _SPACE:
            raise _fail(c, "after top-level value")
        return state, literal
    raise AssertionError(state)


_WORDS = {ord("t"): "true", ord("f"): "false", ord("n"): "null"}


def _end_value(c: int, stack: list[int]) -> tuple[str, bytes]:
    if not stack:
        if c not in _SPACE:
            raise _fail(c, "after top-level value")
        return "end_top", b""
    if c in _SPACE:
        return "end_value", b""
    top = stack[-1]
    if top == _OBJECT_KEY:
        if c == ord(":"):
            stack[-1] = _OBJECT_VALUE
            return "begin_value", b""
        raise _fail(c, "after object key")
    if top == _OBJECT_VALUE:
        if c == ord(","):
            stack[-1] = _OBJECT_KEY
            return "begin_string", b""
        if c == ord("}"):
            stack.pop()
            return _after_pop(stack)
        raise _fail(c, "after object key:value pair")
    if c == ord(","):
        return "begin_value", b""
    if c == ord("]"):
        stack.pop()
        return _after_pop(stack)
    raise _fail(c, "after array element")


def _after_pop(stack: list[int]) -> tuple[str, bytes]:
    return ("end_value", b"") if stack else ("end_top", b"")
