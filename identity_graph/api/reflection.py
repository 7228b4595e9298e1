"""gRPC server reflection, v1 and v1alpha, serving descriptors with their proto comments.

`grpcio-reflection` serves only v1alpha, from the default descriptor pool: the generated
`_pb2` modules register their files without source info (so `grpcurl describe` shows no
comments), and the upb pool cannot find the file of a method (so `describe
identity.v1.IdentityService.Resolve` fails with "Symbol not found"). This servicer answers from
`descriptor_set.binpb` instead, which `scripts/gen_protos.py` builds with imports and source
info, and indexes every symbol down to methods, fields and enum values. It keeps
`grpcio-reflection`'s messages: v1 is v1alpha under another package name, the same wire format,
so one servicer serves both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from importlib import resources

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2 as rpb
from grpc_reflection.v1alpha import reflection_pb2_grpc

V1 = "grpc.reflection.v1.ServerReflection"
V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
_V1ALPHA_FILE = "grpc_reflection/v1alpha/reflection.proto"


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """Our protos and their imports, with source info (the file shipped as package data)."""
    data = (resources.files("stubs") / "descriptor_set.binpb").read_bytes()
    return descriptor_pb2.FileDescriptorSet.FromString(data)


class Descriptors:
    """File descriptors by name, and the file that declares each fully qualified symbol."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        self.files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        self.symbols: dict[str, str] = {}
        self.messages: set[str] = set()
        for f in files:
            self.add(f)

    @classmethod
    def served(cls, *extra_files: str) -> Descriptors:
        """Our descriptor set, plus files from the default pool (health, reflection v1alpha) and
        a v1 reflection file made from v1alpha's."""
        out = cls(descriptor_set().file)
        pool = descriptor_pool.Default()
        for name in (*extra_files, _V1ALPHA_FILE):
            proto = descriptor_pb2.FileDescriptorProto()
            pool.FindFileByName(name).CopyToProto(proto)
            out.add(proto)
        out.add(_v1_from_v1alpha(out.files[_V1ALPHA_FILE]))
        return out

    def add(self, f: descriptor_pb2.FileDescriptorProto) -> None:
        if f.name in self.files:
            return
        self.files[f.name] = f
        prefix = f"{f.package}." if f.package else ""

        def enum(e: descriptor_pb2.EnumDescriptorProto, scope: str) -> None:
            self.symbols[f"{scope}{e.name}"] = f.name
            for v in e.value:  # protobuf scopes enum values beside their enum
                self.symbols[f"{scope}{v.name}"] = f.name
                self.symbols[f"{scope}{e.name}.{v.name}"] = f.name

        def message(m: descriptor_pb2.DescriptorProto, scope: str) -> None:
            name = f"{scope}{m.name}"
            self.symbols[name] = f.name
            self.messages.add(name)
            for fld in (*m.field, *m.extension):
                self.symbols[f"{name}.{fld.name}"] = f.name
            for o in m.oneof_decl:
                self.symbols[f"{name}.{o.name}"] = f.name
            for nested in m.nested_type:
                message(nested, f"{name}.")
            for e in m.enum_type:
                enum(e, f"{name}.")

        for m in f.message_type:
            message(m, prefix)
        for e in f.enum_type:
            enum(e, prefix)
        for ext in f.extension:
            self.symbols[f"{prefix}{ext.name}"] = f.name
        for s in f.service:
            self.symbols[f"{prefix}{s.name}"] = f.name
            for rpc in s.method:
                self.symbols[f"{prefix}{s.name}.{rpc.name}"] = f.name

    def with_dependencies(self, name: str) -> list[bytes]:
        """The file first, then every file it imports (transitively), serialized."""
        seen: list[str] = []
        todo = [name]
        while todo:
            n = todo.pop()
            if n in seen or n not in self.files:
                continue
            seen.append(n)
            todo.extend(self.files[n].dependency)
        return [self.files[n].SerializeToString() for n in seen]


def _v1_from_v1alpha(alpha: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto: v1alpha's file with the package renamed."""
    v1 = descriptor_pb2.FileDescriptorProto()
    v1.CopyFrom(alpha)
    v1.name = "grpc/reflection/v1/reflection.proto"
    v1.package = "grpc.reflection.v1"
    v1.ClearField("options")
    for m in v1.message_type:
        for fld in m.field:
            fld.type_name = fld.type_name.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
    for s in v1.service:
        for rpc in s.method:
            rpc.input_type = rpc.input_type.replace(".v1alpha.", ".v1.")
            rpc.output_type = rpc.output_type.replace(".v1alpha.", ".v1.")
    return v1


class ReflectionServicer(reflection_pb2_grpc.ServerReflectionServicer):
    """Answers `ServerReflectionInfo` from `Descriptors`; registered under v1 and v1alpha."""

    def __init__(self, service_names: Iterable[str], descriptors: Descriptors) -> None:
        self.service_names = sorted({*service_names, V1, V1ALPHA})
        self.descriptors = descriptors

    async def ServerReflectionInfo(
        self, request_iterator: AsyncIterator[rpb.ServerReflectionRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rpb.ServerReflectionResponse]:
        async for request in request_iterator:
            yield self.answer(request)

    def answer(self, request: rpb.ServerReflectionRequest) -> rpb.ServerReflectionResponse:
        d = self.descriptors
        which = request.WhichOneof("message_request")
        if which == "list_services":
            return rpb.ServerReflectionResponse(
                original_request=request,
                list_services_response=rpb.ListServiceResponse(
                    service=[rpb.ServiceResponse(name=n) for n in self.service_names]))
        name = None
        if which == "file_by_filename":
            name = request.file_by_filename if request.file_by_filename in d.files else None
        elif which == "file_containing_symbol":
            name = d.symbols.get(request.file_containing_symbol.lstrip("."))
        elif which == "all_extension_numbers_of_type":
            type_name = request.all_extension_numbers_of_type.lstrip(".")
            if type_name in d.messages:  # our protos declare no extensions
                return rpb.ServerReflectionResponse(
                    original_request=request,
                    all_extension_numbers_response=rpb.ExtensionNumberResponse(base_type_name=type_name))
        elif which is None:
            return _error(request, grpc.StatusCode.INVALID_ARGUMENT, "no request")
        if name is None:
            return _error(request, grpc.StatusCode.NOT_FOUND, f"{which} not found")
        return rpb.ServerReflectionResponse(
            original_request=request,
            file_descriptor_response=rpb.FileDescriptorResponse(file_descriptor_proto=d.with_dependencies(name)))


def _error(request: rpb.ServerReflectionRequest, code: grpc.StatusCode, message: str
           ) -> rpb.ServerReflectionResponse:
    return rpb.ServerReflectionResponse(
        original_request=request,
        error_response=rpb.ErrorResponse(error_code=code.value[0], error_message=message))


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str], *extra_files: str) -> None:
    """Serves reflection v1 and v1alpha on `server` for `service_names` (the reflection services
    themselves are added). `extra_files`: proto files of other services (e.g. health) to take
    from the default descriptor pool."""
    servicer = ReflectionServicer(service_names, Descriptors.served(*extra_files))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=rpb.ServerReflectionRequest.FromString,
        response_serializer=rpb.ServerReflectionResponse.SerializeToString,
    )
    v1 = grpc.method_handlers_generic_handler(V1, {"ServerReflectionInfo": handler})
    server.add_generic_rpc_handlers((v1,))
