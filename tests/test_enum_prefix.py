"""Every enum value of the API carries its enum's name as prefix (`LINK_KIND_VERIFIED`), zero
value `<ENUM>_UNSPECIFIED`: buf's ENUM_VALUE_PREFIX and ENUM_ZERO_VALUE_SUFFIX rules, checked on
the generated descriptors so it holds without buf too, and not exempted in buf.yaml."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import EnumDescriptor

from stubs.identity.v1 import admin_pb2, batch_pb2, identity_pb2
from stubs.session.v1 import session_pb2

ROOT = Path(__file__).resolve().parent.parent
MODULES = (identity_pb2, admin_pb2, batch_pb2, session_pb2)


def _enums() -> list[EnumDescriptor]:
    out: list[EnumDescriptor] = []

    def nested(msg: Any) -> None:
        out.extend(msg.enum_types)
        for m in msg.nested_types:
            nested(m)

    for module in MODULES:
        out.extend(module.DESCRIPTOR.enum_types_by_name.values())
        for msg in module.DESCRIPTOR.message_types_by_name.values():
            nested(msg)
    return out


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


@pytest.mark.parametrize("enum", _enums(), ids=lambda e: e.full_name)
def test_enum_values_are_prefixed(enum: EnumDescriptor) -> None:
    prefix = _upper_snake(enum.name) + "_"
    assert enum.values_by_number[0].name == prefix + "UNSPECIFIED"
    assert [v.name for v in enum.values if not v.name.startswith(prefix)] == []


def test_buf_does_not_exempt_the_prefix_rule() -> None:
    lines = [line.split("#")[0] for line in (ROOT / "buf.yaml").read_text().splitlines()]
    assert not [line for line in lines if "ENUM_VALUE_PREFIX" in line or "ENUM_ZERO_VALUE_SUFFIX" in line]
