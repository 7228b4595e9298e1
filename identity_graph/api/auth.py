"""Who may call: bearer tokens with scopes, the one method → scope table, and the auth interceptor.

Each calling service holds its own token. The server keeps only the token's SHA-256, never the
token itself. A slow password hash (scrypt, argon2) is unnecessary here: it protects low-entropy
secrets against offline guessing, and these tokens are 256 random bits (`new_token`), so a leaked
hash cannot be reversed or brute-forced either way. A fast hash also keeps the per-call check at
microseconds, where a deliberately slow one would hand any client a CPU-exhaustion lever.

Tokens come from a JSON or TOML file and/or the `IDENTITY_TOKENS` environment variable (JSON):

    {"tokens": [{"name": "crm", "sha256": "<64 hex>", "scopes": ["identity.read"],
                 "rate": 50, "burst": 100}]}

`rate`/`burst` are optional per-caller overrides of the server's rate limit; `cert_cn` binds the
token to the mutual-TLS client certificate with that subject common name. Issue and revoke with
`python -m identity_graph.api.auth issue --name crm --scopes identity.read --tokens-file t.json`
(also `identity-server issue-token …`); the token is printed once and only its hash is stored.
A running `identity-server` reads the file again on SIGHUP; an invalid file keeps the old set.
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import hmac
import inspect
import ipaddress
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

log = logging.getLogger("identity_graph.api.auth")
access_log = logging.getLogger("identity_server.access")

IDENTITY_READ = "identity.read"
IDENTITY_WRITE = "identity.write"
SESSION_READ = "session.read"
SESSION_WRITE = "session.write"
ADMIN = "admin"
SCOPES = frozenset({IDENTITY_READ, IDENTITY_WRITE, SESSION_READ, SESSION_WRITE, ADMIN})
PUBLIC = "<public>"  # table marker for methods open without a token; not a grantable scope

ENV_TOKENS = "IDENTITY_TOKENS"
TOKEN_PREFIX = "igt_"
TOKEN_BYTES = 32

_IS = "/identity.v1.IdentityService/"
_SS = "/session.v1.SessionService/"

# The one table. Keys are full method names, or "/package.Service/*" for every method of a service.
# A method that matches nothing is denied (fail closed). Scopes do not imply one another.
METHOD_SCOPES: Mapping[str, str] = {
    _IS + "Resolve": IDENTITY_WRITE,
    _IS + "Link": IDENTITY_WRITE,
    _IS + "Unlink": IDENTITY_WRITE,
    _IS + "SetGeneric": IDENTITY_WRITE,
    _IS + "GetCustomer": IDENTITY_READ,
    _IS + "Explain": IDENTITY_READ,
    _IS + "PreviewSplit": IDENTITY_READ,
    _IS + "WatchEvents": IDENTITY_READ,
    _IS + "Split": ADMIN,
    _SS + "GetConversation": SESSION_READ,
    _SS + "ListConversations": SESSION_READ,
    _SS + "SuggestHandoff": SESSION_READ,
    _SS + "GetConsents": SESSION_READ,
    _SS + "GetMetrics": SESSION_READ,
    _SS + "StartOrResume": SESSION_WRITE,
    _SS + "AppendTurn": SESSION_WRITE,
    _SS + "UpdateContext": SESSION_WRITE,
    _SS + "UpdateState": SESSION_WRITE,
    _SS + "CreateHandoff": SESSION_WRITE,
    _SS + "RedeemHandoff": SESSION_WRITE,
    _SS + "StartStepUp": SESSION_WRITE,
    _SS + "CompleteStepUp": SESSION_WRITE,
    _SS + "Escalate": SESSION_WRITE,
    _SS + "Close": SESSION_WRITE,
    _SS + "RecordConsent": SESSION_WRITE,
    _SS + "RecycleIdentifier": ADMIN,
    "/identity.v1.BatchService/*": ADMIN,
    "/identity.v1.AdminService/*": ADMIN,
    "/identity.v1.ReviewService/ListReviewQueue": IDENTITY_READ,
    "/identity.v1.ReviewService/ListConstraints": IDENTITY_READ,
    "/identity.v1.ReviewService/AcceptReview": IDENTITY_WRITE,
    "/identity.v1.ReviewService/RejectReview": IDENTITY_WRITE,
    "/identity.v1.ReviewService/WithdrawConstraint": IDENTITY_WRITE,
    "/grpc.health.v1.Health/*": PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/*": PUBLIC,
    "/grpc.reflection.v1.ServerReflection/*": PUBLIC,
}

current_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_caller", default=None)
"""The authenticated caller's name while an RPC runs (None when auth is off or the method is public).
Worker threads started with `asyncio.to_thread` see it too."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class TokenConfigError(ValueError):
    """A tokens file or IDENTITY_TOKENS value that cannot be used; the message names the entry."""


def required_scope(method: str) -> str | None:
    """The scope `method` (a full method name, "/pkg.Service/Method") needs; `PUBLIC` when it is open;
    None when the table does not know it, which means deny."""
    scope = METHOD_SCOPES.get(method)
    if scope is not None:
        return scope
    service, sep, _ = method.rpartition("/")
    return METHOD_SCOPES.get(service + "/*") if sep and service else None


def is_public(method: str) -> bool:
    return required_scope(method) == PUBLIC


# ---- tokens ---------------------------------------------------------------------------------


def new_token() -> str:
    """A fresh bearer token: a recognisable prefix (for secret scanners) and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The hex SHA-256 of `token`: what the tokens file stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    """One caller: its name, its token's SHA-256 digest, its scopes, optional rate overrides, and
    optionally the client certificate (subject common name) the token must arrive with."""

    name: str
    digest: bytes = field(repr=False)
    scopes: frozenset[str]
    rate: float | None = None
    burst: float | None = None
    created: str | None = None
    cert_cn: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "sha256": self.digest.hex(), "scopes": sorted(self.scopes)}
        if self.rate is not None:
            out["rate"] = self.rate
        if self.burst is not None:
            out["burst"] = self.burst
        if self.created:
            out["created"] = self.created
        if self.cert_cn:
            out["cert_cn"] = self.cert_cn
        return out


def _entry(raw: Any, where: str) -> TokenEntry:
    if not isinstance(raw, Mapping):
        raise TokenConfigError(f"{where}: each token entry must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TokenConfigError(f"{where}: name must be 1-64 of [A-Za-z0-9._-], got {name!r}")
    if "token" in raw:
        raise TokenConfigError(f"{where} ({name}): holds a plaintext 'token'; store only its sha256")
    digest = raw.get("sha256")
    if not isinstance(digest, str) or not _HEX64.match(digest.lower()):
        raise TokenConfigError(f"{where} ({name}): sha256 must be 64 hex digits")
    scopes = raw.get("scopes")
    if isinstance(scopes, str):
        scopes = [s for s in scopes.split(",") if s]
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise TokenConfigError(f"{where} ({name}): scopes must be a list of strings")
    unknown = sorted(set(scopes) - SCOPES)
    if unknown:
        raise TokenConfigError(f"{where} ({name}): unknown scopes {unknown}; known: {sorted(SCOPES)}")
    limits = {}
    for key in ("rate", "burst"):
        value = raw.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise TokenConfigError(f"{where} ({name}): {key} must be a positive number")
        limits[key] = None if value is None else float(value)
    created = raw.get("created")
    cert_cn = raw.get("cert_cn")
    if cert_cn is not None and (not isinstance(cert_cn, str) or not 0 < len(cert_cn) <= 255):
        raise TokenConfigError(f"{where} ({name}): cert_cn must be a certificate common name")
    return TokenEntry(
        name,
        bytes.fromhex(digest.lower()),
        frozenset(scopes),
        created=str(created) if created else None,
        cert_cn=cert_cn or None,
        **limits,
    )


def _entries(doc: Any, where: str) -> list[TokenEntry]:
    raw = doc.get("tokens", []) if isinstance(doc, Mapping) else doc
    if not isinstance(raw, list):
        raise TokenConfigError(f'{where}: expected a list of tokens or {{"tokens": [...]}}')
    return [_entry(item, f"{where} entry {i}") for i, item in enumerate(raw)]


def _read_doc(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return json.loads(text) if text.strip() else {"tokens": []}
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise TokenConfigError(f"{path}: {e}") from e


class TokenStore:
    """The configured callers, by token hash. Immutable; build a new one to reload."""

    def __init__(self, entries: Iterable[TokenEntry]) -> None:
        self.entries: tuple[TokenEntry, ...] = tuple(entries)
        names = [e.name for e in self.entries]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TokenConfigError(f"caller names must be unique; repeated: {dupes}")
        if len({e.digest for e in self.entries}) != len(self.entries):
            raise TokenConfigError("two callers share one token hash")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TokenStore:
        """Reads a `.json` or `.toml` tokens file.

        Raises:
            TokenConfigError: unreadable file or invalid entry.
        """
        p = Path(path)
        try:
            return cls(_entries(_read_doc(p), str(p)))
        except OSError as e:
            raise TokenConfigError(f"cannot read tokens file {p}: {e.strerror or e}") from e

    @classmethod
    def from_json(cls, text: str, where: str = ENV_TOKENS) -> TokenStore:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise TokenConfigError(f"{where}: {e}") from e
        return cls(_entries(doc, where))

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
    ) -> TokenStore | None:
        """The callers from `path` and from `$IDENTITY_TOKENS` together; None when neither is set
        (auth off).

        Raises:
            TokenConfigError: a source is invalid, or a name appears in both.
        """
        env = os.environ if env is None else env
        entries: list[TokenEntry] = []
        configured = False
        if path:
            entries += cls.from_file(path).entries
            configured = True
        if env.get(ENV_TOKENS, "").strip():
            entries += cls.from_json(env[ENV_TOKENS]).entries
            configured = True
        return cls(entries) if configured else None

    def authenticate(self, token: str) -> TokenEntry | None:
        """The entry whose hash matches `token`, comparing against every entry in constant time."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found = None
        for entry in self.entries:  # no early exit: the time taken does not depend on which matched
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        return found

    def rate_overrides(self) -> dict[str, tuple[float | None, float | None]]:
        """Per-caller (rate, burst) overrides from the entries that set either."""
        return {e.name: (e.rate, e.burst) for e in self.entries if e.rate is not None or e.burst is not None}

    def __len__(self) -> int:
        return len(self.entries)


# ---- the interceptor ------------------------------------------------------------------------


def log_rejected(
    method: str, code: grpc.StatusCode, peer: str, caller: str | None, message: str = ""
) -> None:
    """An access-log line, in the access interceptor's shape, for a call refused before it ran;
    `message` is the status message the caller gets."""
    access_log.info(
        "rpc",
        extra={
            "fields": {
                "method": method,
                "code": code.name,
                "duration_ms": 0.0,
                "peer": peer,
                "caller": caller,
                "message": message,
            }
        },
    )


def peer_host(peer: str) -> str:
    """ "ipv4:10.0.0.5:43210" → "10.0.0.5"; "ipv6:[::1]:5" → "::1"; anything else unchanged."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        host = rest.rpartition(":")[0] or rest
        return host.strip("[]")
    return peer


def bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The token from the one `authorization: Bearer <token>` header; None when absent, repeated or
    malformed."""
    values = [v for k, v in metadata or () if k.lower() == "authorization"]
    if len(values) != 1:
        return None
    value = values[0].decode("latin-1") if isinstance(values[0], bytes) else str(values[0])
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]


def peer_common_names(context: grpc.aio.ServicerContext) -> set[str]:
    """Subject common names of the client certificate the peer presented (mutual TLS), else
    empty."""
    names = (context.auth_context() or {}).get("x509_common_name", [])
    return {n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names}


def wrap_handler(
    handler: grpc.RpcMethodHandler, before: Callable[[grpc.aio.ServicerContext], Awaitable[None]]
) -> grpc.RpcMethodHandler:
    """`handler` of the same kind, awaiting `before(context)` (which may abort) before the call."""
    if handler.unary_unary or handler.stream_unary:
        inner_unary: Behavior = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await before(context)
            result = inner_unary(request, context)
            return await result if inspect.isawaitable(result) else result

        factory = (
            grpc.unary_unary_rpc_method_handler
            if handler.unary_unary
            else grpc.stream_unary_rpc_method_handler
        )
        return factory(unary, handler.request_deserializer, handler.response_serializer)

    inner_stream: Behavior = handler.unary_stream or handler.stream_stream

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await before(context)
        result = inner_stream(request, context)
        if inspect.isasyncgen(result):
            async for item in result:
                yield item
        elif inspect.isawaitable(result):
            await result
        else:  # a sync iterator
            for item in result:
                yield item

    factory = (
        grpc.unary_stream_rpc_method_handler
        if handler.unary_stream
        else grpc.stream_stream_rpc_method_handler
    )
    return factory(streaming, handler.request_deserializer, handler.response_serializer)


def _refusing(code: grpc.StatusCode, detail: str, method: str, caller: str | None) -> grpc.RpcMethodHandler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        log_rejected(method, code, context.peer(), caller, detail)
        await context.abort(code, detail)

    return grpc.unary_unary_rpc_method_handler(refuse)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates `authorization: Bearer <token>` and checks the method's scope (`METHOD_SCOPES`).

    A missing or unknown token gets UNAUTHENTICATED; a known caller without the scope, or a method
    the table does not know, gets PERMISSION_DENIED. Public methods (health, reflection) pass
    untouched. For admitted calls the caller's name is in `current_caller` while the call runs.
    """

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        scope = required_scope(method)
        if scope == PUBLIC:
            return await continuation(details)
        token = bearer_token(details.invocation_metadata)
        entry = self.tokens.authenticate(token) if token is not None else None
        if entry is None:
            code, detail = (
                grpc.StatusCode.UNAUTHENTICATED,
                ("missing bearer token" if token is None else "invalid bearer token"),
            )
        elif scope is None:
            code, detail = grpc.StatusCode.PERMISSION_DENIED, f"caller {entry.name!r} may not call {method}"
        elif scope not in entry.scopes:
            code, detail = grpc.StatusCode.PERMISSION_DENIED, f"{method} needs scope {scope!r}"
        else:
            code, detail = grpc.StatusCode.OK, ""
        handler = await continuation(details)
        name = entry.name if entry is not None else None

        if code is not grpc.StatusCode.OK:
            if handler is None:
                return _refusing(code, detail, method, name)

            async def refuse(context: grpc.aio.ServicerContext) -> None:
                current_caller.set(name)
                log_rejected(method, code, context.peer(), name, detail)
                await context.abort(code, detail)

            return wrap_handler(handler, refuse)

        if handler is None:
            return handler

        bound_to = entry.cert_cn if entry is not None else None

        async def admit(context: grpc.aio.ServicerContext) -> None:
            # Each RPC runs in its own task (its own context copy), so this does not leak.
            current_caller.set(name)
            if bound_to is not None and bound_to not in peer_common_names(context):
                # A token bound to a certificate is worthless without it (a leaked token alone).
                message = "this token is accepted only with its client certificate"
                log_rejected(method, grpc.StatusCode.UNAUTHENTICATED, context.peer(), name, message)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return wrap_handler(handler, admit)


# ---- binding rule ---------------------------------------------------------------------------


def is_loopback_address(address: str) -> bool:
    """True when `address` (host:port, [v6]:port, unix:…) only accepts local connections.

    Names other than "localhost" count as non-loopback: they may resolve to a public interface.
    """
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.rpartition(":")[0]
    host = host.strip().lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class InsecureBindError(ValueError):
    """A non-loopback bind without token auth or TLS, and not explicitly forced."""


def check_bind(address: str, *, auth: bool, tls: bool, force: bool = False) -> list[str]:
    """Enforces the binding rule: a non-loopback address needs token auth AND TLS (bearer tokens
    must not cross a network in clear text), unless `force` (e.g. TLS ends at a sidecar).

    Returns:
        What is missing (empty when the bind is fine); with `force` these are only warnings.

    Raises:
        InsecureBindError: something is missing and `force` is False.
    """
    if is_loopback_address(address):
        return []
    missing = [
        what
        for what, ok in (
            ("token auth (--tokens-file or $IDENTITY_TOKENS)", auth),
            ("TLS (--tls-cert/--tls-key)", tls),
        )
        if not ok
    ]
    if missing and not force:
        raise InsecureBindError(
            f"refusing to bind non-loopback address {address} without {' and '.join(missing)}; "
            "configure them, or pass --allow-insecure-non-loopback to force"
        )
    return missing


# ---- issuing tokens -------------------------------------------------------------------------


def _write_tokens(path: Path, entries: Sequence[TokenEntry]) -> None:
    docs = [e.to_json() for e in entries]
    if path.suffix.lower() == ".toml":
        lines = []
        for d in docs:
            lines.append("[[tokens]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in d.items()]  # JSON scalars/arrays are TOML
            lines.append("")
        text = "\n".join(lines)
    else:
        text = json.dumps({"tokens": docs}, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _existing(path: Path) -> list[TokenEntry]:
    return list(TokenStore.from_file(path).entries) if path.exists() else []


def issue_token(
    path: str | os.PathLike[str],
    name: str,
    scopes: Iterable[str],
    *,
    rate: float | None = None,
    burst: float | None = None,
    replace: bool = False,
    cert_cn: str | None = None,
) -> str:
    """Adds a caller to the tokens file (created if absent, written atomically, mode 0600).

    Returns:
        The new token. It is not stored anywhere: hand it to the caller now.

    Raises:
        TokenConfigError: bad name or scopes, or the name exists and `replace` is False.
    """
    p = Path(path)
    entries = _existing(p)
    if any(e.name == name for e in entries):
        if not replace:
            raise TokenConfigError(f"caller {name!r} already has a token; pass --replace to rotate it")
        entries = [e for e in entries if e.name != name]
    token = new_token()
    raw = {
        "name": name,
        "sha256": hash_token(token),
        "scopes": sorted(set(scopes)),
        "rate": rate,
        "burst": burst,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "cert_cn": cert_cn,
    }
    entries.append(_entry(raw, "new token"))
    TokenStore(entries)  # validates uniqueness
    _write_tokens(p, entries)
    return token


def revoke_token(path: str | os.PathLike[str], name: str) -> bool:
    """Removes `name` from the tokens file; False when it was not there."""
    p = Path(path)
    entries = _existing(p)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        return False
    _write_tokens(p, kept)
    return True


def main(argv: list[str] | None = None) -> int:
    """`issue`, `revoke` and `list` on a tokens file. A running server reads it again on SIGHUP."""
    p = argparse.ArgumentParser(prog="python -m identity_graph.api.auth", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("issue", help="create a caller's token; prints it once, stores its hash")
    issue.add_argument("--name", required=True)
    issue.add_argument("--scopes", required=True, help=f"comma-separated: {','.join(sorted(SCOPES))}")
    issue.add_argument("--rate", type=float, help="this caller's calls/s (overrides --rate-limit)")
    issue.add_argument("--burst", type=float, help="this caller's bucket size (overrides --rate-burst)")
    issue.add_argument("--replace", action="store_true", help="rotate: the old token stops working")
    issue.add_argument("--cert-cn", help="accept the token only over mutual TLS from a client "
                                         "certificate with this subject common name")
    revoke = sub.add_parser("revoke", help="remove a caller")
    revoke.add_argument("--name", required=True)
    listing = sub.add_parser("list", help="callers and scopes (no secrets)")
    for sp in (issue, revoke, listing):
        sp.add_argument("--tokens-file", required=True)
    args = p.parse_args(argv)
    try:
        if args.command == "issue":
            scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
            token = issue_token(
                args.tokens_file, args.name, scopes, rate=args.rate, burst=args.burst, replace=args.replace,
                cert_cn=args.cert_cn,
            )
            print(token)
            print(
                f"issued a token for {args.name!r} ({','.join(sorted(set(scopes)))}); only its hash is in "
                f"{args.tokens_file}. It is shown once: store it in the caller's secret store now. "
                "Restart the server to load it.",
                file=sys.stderr,
            )
        elif args.command == "revoke":
            if not revoke_token(args.tokens_file, args.name):
                print(f"no caller named {args.name!r} in {args.tokens_file}", file=sys.stderr)
                return 1
            print(f"revoked {args.name!r}; send the server SIGHUP to apply", file=sys.stderr)
        else:
            for e in TokenStore.from_file(args.tokens_file).entries:
                extra = "".join(f" {k}={v:g}" for k, v in (("rate", e.rate), ("burst", e.burst)) if v)
                print(f"{e.name}\t{','.join(sorted(e.scopes))}{extra}")
    except TokenConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
