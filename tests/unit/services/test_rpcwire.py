"""rpcwire against xmlrpc.client, the implementation it replaces in PID 1, as the oracle."""

from __future__ import annotations

import xmlrpc.client
from typing import Any
from xml.parsers import expat

import pytest

from helix_init.services import rpcwire

VALUES: list[Any] = [
    "RUNNING",
    "",
    "a & b < c > d ' \" é 🙂\nnext line",
    "  spaced  ",
    0,
    -7,
    2**31 - 1,
    True,
    False,
    None,
    1.5,
    [],
    {},
    ["one", 2, [True, None], {"k": "v"}],
    {"name": "dockerd", "pid": 4242, "statename": "RUNNING", "group": {"nested": [1, 2]}},
    [[["added"], [], []]],  # reloadConfig's answer
]


@pytest.mark.parametrize("value", VALUES)
def test_a_call_reads_back_as_xmlrpc_client_reads_it(value: Any) -> None:
    params, method = xmlrpc.client.loads(rpcwire.dumps((value, "x"), "supervisor.startProcess"))
    assert method == "supervisor.startProcess"
    assert params == (value, "x")


@pytest.mark.parametrize("value", VALUES)
def test_an_answer_decodes_as_xmlrpc_client_decodes_it(value: Any) -> None:
    payload = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()
    assert rpcwire.loads(payload) == (xmlrpc.client.loads(payload)[0], None)


def test_values_without_a_type_are_strings_and_i4_is_an_int() -> None:
    payload = (
        b"<?xml version='1.0'?><methodResponse><params><param><value><struct>"
        b"<member><name>description</name><value>pid 12, uptime 0:00:01</value></member>"
        b"<member><name>pid</name><value><i4>12</i4></value></member>"
        b"<member><name>spawnerr</name><value></value></member>"
        b"</struct></value></param></params></methodResponse>"
    )
    ((info,), _) = rpcwire.loads(payload)
    assert info == {"description": "pid 12, uptime 0:00:01", "pid": 12, "spawnerr": ""}
    assert rpcwire.loads(payload) == (xmlrpc.client.loads(payload)[0], None)


def test_a_fault_is_raised_with_its_code_and_text() -> None:
    payload = xmlrpc.client.dumps(xmlrpc.client.Fault(10, "BAD_NAME: web")).encode()
    with pytest.raises(rpcwire.Fault) as caught:
        rpcwire.loads(payload)
    assert (caught.value.faultCode, caught.value.faultString) == (10, "BAD_NAME: web")


@pytest.mark.parametrize(
    "payload",
    [
        b"<methodResponse><params><param><value><array><data>",  # cut off mid-answer
        b"<methodResponse><params><param><value><boolean>2</boolean></value></param>",
        b"<html><body>502</body></html>",
        b"",
    ],
)
def test_what_is_not_an_answer_is_an_error(payload: bytes) -> None:
    with pytest.raises((ValueError, expat.ExpatError)):
        rpcwire.loads(payload)


def test_what_xml_rpc_cannot_carry_is_refused() -> None:
    with pytest.raises(OverflowError):
        rpcwire.dumps((2**31,), "m")
    with pytest.raises(TypeError):
        rpcwire.dumps((object(),), "m")
