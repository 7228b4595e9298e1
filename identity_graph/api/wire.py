"""Requests whose bytes do not parse get INVALID_ARGUMENT, not grpc's UNKNOWN with the parser's text.

grpc calls the request deserializer before any servicer code; when it raises, grpc answers
UNKNOWN with the exception's text (the message type, "Wire format was corrupt", "String field had
bad UTF-8"). `DecodeGuardInterceptor` wraps every handler's deserializer: an unparseable request
becomes a marker, and the handler answers it with INVALID_ARGUMENT naming `request`, and nothing of
the parser's internals.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

UNPARSEABLE_DETAIL = "request: not a valid message (corrupt bytes, or a string that is not UTF-8)"


class _Unparseable:
    """Stands in for a request whose bytes did not parse."""


_UNPARSEABLE = _Unparseable()


def _guarded(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, UnicodeDecodeError):
            return _UNPARSEABLE

    return parse


class DecodeGuardInterceptor(grpc.aio.ServerInterceptor):
    """Answers unparseable requests with INVALID_ARGUMENT. Put it last (innermost): outer
    interceptors rebuild handlers with the deserializer they are given, so the guard stays in."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_streaming:  # these services take unary requests
            return handler
        parse = _guarded(handler.request_deserializer)
        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if request is _UNPARSEABLE:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, UNPARSEABLE_DETAIL)
                result = inner_uu(request, context)
                return await result if inspect.isawaitable(result) else result

            return grpc.unary_unary_rpc_method_handler(unary, parse, handler.response_serializer)

        inner_us = handler.unary_stream

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if request is _UNPARSEABLE:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, UNPARSEABLE_DETAIL)
            result = inner_us(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            elif inspect.isawaitable(result):
                await result
            else:
                for item in result:
                    yield item

        return grpc.unary_stream_rpc_method_handler(streaming, parse, handler.response_serializer)


__all__ = ["UNPARSEABLE_DETAIL", "DecodeGuardInterceptor"]
