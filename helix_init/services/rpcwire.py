"""XML-RPC's wire format, as supervisord speaks it: a call encoded, an answer decoded (PID 1).

Not xmlrpc.client: it imports http.client and with it the email package
(~2.3 MiB of PID 1's RSS and ~20 ms of imports) for the two functions the
engine client uses, `dumps` and `loads`; the transport is http10.py's
already. The answer is parsed with expat, as xmlrpc.client does, and decodes
the same way: a `<value>` without a type is a string, a struct is a dict, an
array a list; `dateTime.iso8601` stays its text (supervisord sends none).
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any
from xml.parsers import expat

_INTS = frozenset({"int", "i1", "i2", "i4", "i8", "biginteger"})
_FLOATS = frozenset({"double", "float", "bigdecimal"})
_TAGS = _INTS | _FLOATS | {"array", "struct", "string", "boolean", "nil", "base64"}
_TAGS |= {"dateTime.iso8601", "value", "data", "member", "name", "param", "params"}
_TAGS |= {"methodResponse", "methodCall", "methodName", "fault"}


class Fault(Exception):
    """The server refused the call: its faultCode and faultString (as xmlrpc.client.Fault)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(code, text)
        self.faultCode = code
        self.faultString = text


def dumps(params: tuple[Any, ...], method: str) -> str:
    """A methodCall of `method` with `params` (None is <nil/>, as allow_none=True)."""
    args = "".join(f"<param>\n{_value(p)}</param>\n" for p in params)
    return (
        "<?xml version='1.0'?>\n<methodCall>\n"
        f"<methodName>{_escape(method)}</methodName>\n<params>\n{args}</params>\n</methodCall>\n"
    )


def loads(payload: bytes) -> tuple[tuple[Any, ...], None]:
    """The answer's params (as xmlrpc.client.loads, without the method name); Fault if refused.

    ValueError or expat.ExpatError for what is not an XML-RPC answer.
    """
    reader = _Reader()
    parser = expat.ParserCreate("utf-8")
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.text
    parser.Parse(payload, True)
    if reader.marks:
        raise ValueError("unclosed array or struct")
    if reader.fault:
        (detail,) = reader.stack
        if not isinstance(detail, dict):
            raise ValueError("a fault without its struct")
        raise Fault(int(detail.get("faultCode", 0)), str(detail.get("faultString", "")))
    return tuple(reader.stack), None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _value(value: Any) -> str:
    if value is None:
        return "<value><nil/></value>"
    if isinstance(value, bool):
        return f"<value><boolean>{int(value)}</boolean></value>"
    if isinstance(value, int):
        if not -(2**31) <= value < 2**31:
            raise OverflowError(f"int exceeds XML-RPC limits: {value}")
        return f"<value><int>{value}</int></value>"
    if isinstance(value, float):
        return f"<value><double>{value!r}</double></value>"
    if isinstance(value, str):
        return f"<value><string>{_escape(value)}</string></value>"
    if isinstance(value, (list, tuple)):
        items = "".join(_value(v) for v in value)
        return f"<value><array><data>\n{items}</data></array></value>\n"
    if isinstance(value, dict):
        members = "".join(
            f"<member>\n<name>{_escape(str(k))}</name>\n{_value(v)}</member>\n"
            for k, v in value.items()
        )
        return f"<value><struct>\n{members}</struct></value>\n"
    raise TypeError(f"cannot marshal {type(value).__name__} objects")


class _Reader:
    """expat's handlers: values pile up on `stack`; an array or struct takes its own back."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[int] = []  # where each open array or struct began on the stack
        self.fault = False
        self._text: list[str] = []
        self._bare = False  # inside a <value> with no type element (yet): a string

    def start(self, tag: str, _attrs: dict[str, str]) -> None:
        if tag not in _TAGS:
            raise ValueError(f"unknown tag {tag!r}")
        if tag in ("array", "struct"):
            self.marks.append(len(self.stack))
        self._text = []
        self._bare = tag == "value"

    def text(self, data: str) -> None:
        self._text.append(data)

    def end(self, tag: str) -> None:
        text = "".join(self._text)
        bare, self._bare = self._bare, False
        if tag == "value":
            if bare:
                self.stack.append(text)
        elif tag in ("string", "name", "dateTime.iso8601"):
            self.stack.append(text)
        elif tag in _INTS:
            self.stack.append(int(text))
        elif tag in _FLOATS:
            self.stack.append(float(text))
        elif tag == "boolean":
            if text not in ("0", "1"):
                raise ValueError(f"bad boolean value {text!r}")
            self.stack.append(text == "1")
        elif tag == "nil":
            self.stack.append(None)
        elif tag == "base64":
            import base64  # never in supervisord's answers to the init

            self.stack.append(base64.b64decode(text))
        elif tag in ("array", "struct"):
            if not self.marks:
                raise ValueError(f"</{tag}> without its start")
            mark = self.marks.pop()
            items, self.stack[mark:] = self.stack[mark:], []
            if tag == "array":
                self.stack.append(items)
            else:
                self.stack.append(dict(zip(items[::2], items[1::2], strict=True)))
        elif tag == "fault":
            self.fault = True
