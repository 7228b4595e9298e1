"""Every service, method, message, field, oneof, enum and enum value of our protos has a leading
comment (the kind `grpcurl describe` shows), and the comments travel in the descriptor set the
server's reflection serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR_SET = ROOT / "stubs" / "descriptor_set.binpb"
OURS = ("identity/", "session/")


def _elements(f: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    """(source-info path, full name) of every element that must carry a comment."""

    def message(m: descriptor_pb2.DescriptorProto, path: tuple[int, ...], scope: str):
        name = f"{scope}.{m.name}"
        if not m.options.map_entry:
            yield path, name
        else:
            return
        for i, fld in enumerate(m.field):
            yield (*path, 2, i), f"{name}.{fld.name}"
        for i, o in enumerate(m.oneof_decl):
            if not o.name.startswith("_"):  # proto3 `optional` makes a synthetic oneof
                yield (*path, 8, i), f"{name}.{o.name}"
        for i, nested in enumerate(m.nested_type):
            yield from message(nested, (*path, 3, i), name)
        for i, e in enumerate(m.enum_type):
            yield from enum(e, (*path, 4, i), name)

    def enum(e: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], scope: str):
        yield path, f"{scope}.{e.name}"
        for i, v in enumerate(e.value):
            yield (*path, 2, i), f"{scope}.{e.name}.{v.name}"

    for i, m in enumerate(f.message_type):
        yield from message(m, (4, i), f.package)
    for i, e in enumerate(f.enum_type):
        yield from enum(e, (5, i), f.package)
    for i, s in enumerate(f.service):
        yield (6, i), f"{f.package}.{s.name}"
        for j, rpc in enumerate(s.method):
            yield (6, i, 2, j), f"{f.package}.{s.name}.{rpc.name}"


def undocumented(fds: descriptor_pb2.FileDescriptorSet) -> list[str]:
    missing = []
    for f in fds.file:
        if not f.name.startswith(OURS):
            continue
        documented = {
            tuple(loc.path) for loc in f.source_code_info.location
            if loc.leading_comments.strip()  # grpcurl shows leading comments only
        }
        missing += [name for path, name in _elements(f) if path not in documented]
    return missing


def test_every_element_of_our_protos_has_a_comment() -> None:
    fds = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    assert {f.name for f in fds.file} >= {"identity/v1/identity.proto", "session/v1/session.proto",
                                          "identity/v1/admin.proto", "identity/v1/batch.proto"}
    missing = undocumented(fds)
    assert not missing, f"{len(missing)} proto elements without a comment: {', '.join(missing)}"


def test_the_check_finds_a_missing_comment() -> None:
    fds = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    f = next(f for f in fds.file if f.name == "identity/v1/identity.proto")
    target = next(i for i, m in enumerate(f.message_type) if m.name == "Identifier")
    kept = [loc for loc in f.source_code_info.location if tuple(loc.path) != (4, target, 2, 0)]
    del f.source_code_info.location[:]
    f.source_code_info.location.extend(kept)
    assert "identity.v1.Identifier.type" in undocumented(fds)
