import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINK_KIND_UNSPECIFIED: _ClassVar[LinkKind]
    LINK_KIND_POSSIBLE: _ClassVar[LinkKind]
    LINK_KIND_PROBABLE: _ClassVar[LinkKind]
    LINK_KIND_OBSERVED: _ClassVar[LinkKind]
    LINK_KIND_EQUIVALENT: _ClassVar[LinkKind]
    LINK_KIND_VERIFIED: _ClassVar[LinkKind]
LINK_KIND_UNSPECIFIED: LinkKind
LINK_KIND_POSSIBLE: LinkKind
LINK_KIND_PROBABLE: LinkKind
LINK_KIND_OBSERVED: LinkKind
LINK_KIND_EQUIVALENT: LinkKind
LINK_KIND_VERIFIED: LinkKind

class Identifier(_message.Message):
    __slots__ = ("type", "value")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    type: str
    value: str
    def __init__(self, type: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class ComparisonContribution(_message.Message):
    __slots__ = ("name", "level", "bits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    level: str
    bits: float
    def __init__(self, name: _Optional[str] = ..., level: _Optional[str] = ..., bits: _Optional[float] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("link_id", "a", "b", "kind", "source", "channel", "event_id", "model_version", "probability", "match_weight", "created_at", "actor", "comparisons", "removed_at", "removed_by", "removal_reason", "claimant")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MATCH_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_AT_FIELD_NUMBER: _ClassVar[int]
    REMOVED_BY_FIELD_NUMBER: _ClassVar[int]
    REMOVAL_REASON_FIELD_NUMBER: _ClassVar[int]
    CLAIMANT_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    a: Identifier
    b: Identifier
    kind: LinkKind
    source: str
    channel: str
    event_id: str
    model_version: str
    probability: float
    match_weight: float
    created_at: _timestamp_pb2.Timestamp
    actor: str
    comparisons: _containers.RepeatedCompositeFieldContainer[ComparisonContribution]
    removed_at: _timestamp_pb2.Timestamp
    removed_by: str
    removal_reason: str
    claimant: Identifier
    def __init__(self, link_id: _Optional[str] = ..., a: _Optional[_Union[Identifier, _Mapping]] = ..., b: _Optional[_Union[Identifier, _Mapping]] = ..., kind: _Optional[_Union[LinkKind, str]] = ..., source: _Optional[str] = ..., channel: _Optional[str] = ..., event_id: _Optional[str] = ..., model_version: _Optional[str] = ..., probability: _Optional[float] = ..., match_weight: _Optional[float] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., comparisons: _Optional[_Iterable[_Union[ComparisonContribution, _Mapping]]] = ..., removed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., removed_by: _Optional[str] = ..., removal_reason: _Optional[str] = ..., claimant: _Optional[_Union[Identifier, _Mapping]] = ...) -> None: ...

class Violation(_message.Message):
    __slots__ = ("kind", "identifier", "reason")
    KIND_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    kind: str
    identifier: Identifier
    reason: str
    def __init__(self, kind: _Optional[str] = ..., identifier: _Optional[_Union[Identifier, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class Assurance(_message.Message):
    __slots__ = ("identifier", "kind", "full_disclosure")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FULL_DISCLOSURE_FIELD_NUMBER: _ClassVar[int]
    identifier: Identifier
    kind: LinkKind
    full_disclosure: bool
    def __init__(self, identifier: _Optional[_Union[Identifier, _Mapping]] = ..., kind: _Optional[_Union[LinkKind, str]] = ..., full_disclosure: _Optional[bool] = ...) -> None: ...

class AttributeValue(_message.Message):
    __slots__ = ("name", "value", "source", "channel", "observed_at", "identifier")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    source: str
    channel: str
    observed_at: _timestamp_pb2.Timestamp
    identifier: Identifier
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., source: _Optional[str] = ..., channel: _Optional[str] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., identifier: _Optional[_Union[Identifier, _Mapping]] = ...) -> None: ...

class Proof(_message.Message):
    __slots__ = ("kind", "identifier", "reference")
    KIND_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    identifier: Identifier
    reference: str
    def __init__(self, kind: _Optional[str] = ..., identifier: _Optional[_Union[Identifier, _Mapping]] = ..., reference: _Optional[str] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("channel", "identifiers", "attributes", "proof", "source", "event_id", "actor")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    channel: str
    identifiers: _containers.RepeatedCompositeFieldContainer[Identifier]
    attributes: _containers.ScalarMap[str, str]
    proof: Proof
    source: str
    event_id: str
    actor: str
    def __init__(self, channel: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[Identifier, _Mapping]]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., proof: _Optional[_Union[Proof, _Mapping]] = ..., source: _Optional[str] = ..., event_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("customer_id", "is_new", "identifiers", "links", "violations", "assurance", "merged")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IS_NEW_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    ASSURANCE_FIELD_NUMBER: _ClassVar[int]
    MERGED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    is_new: bool
    identifiers: _containers.RepeatedCompositeFieldContainer[Identifier]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    assurance: _containers.RepeatedCompositeFieldContainer[Assurance]
    merged: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., is_new: _Optional[bool] = ..., identifiers: _Optional[_Iterable[_Union[Identifier, _Mapping]]] = ..., links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ..., assurance: _Optional[_Iterable[_Union[Assurance, _Mapping]]] = ..., merged: _Optional[_Iterable[str]] = ...) -> None: ...

class LinkRequest(_message.Message):
    __slots__ = ("a", "b", "kind", "source", "actor", "channel", "event_id", "model_version", "probability", "match_weight", "claimant", "by_person", "reason")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MATCH_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CLAIMANT_FIELD_NUMBER: _ClassVar[int]
    BY_PERSON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    a: Identifier
    b: Identifier
    kind: LinkKind
    source: str
    actor: str
    channel: str
    event_id: str
    model_version: str
    probability: float
    match_weight: float
    claimant: Identifier
    by_person: bool
    reason: str
    def __init__(self, a: _Optional[_Union[Identifier, _Mapping]] = ..., b: _Optional[_Union[Identifier, _Mapping]] = ..., kind: _Optional[_Union[LinkKind, str]] = ..., source: _Optional[str] = ..., actor: _Optional[str] = ..., channel: _Optional[str] = ..., event_id: _Optional[str] = ..., model_version: _Optional[str] = ..., probability: _Optional[float] = ..., match_weight: _Optional[float] = ..., claimant: _Optional[_Union[Identifier, _Mapping]] = ..., by_person: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class LinkResponse(_message.Message):
    __slots__ = ("links", "violations", "customer_ids", "events")
    LINKS_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ..., customer_ids: _Optional[_Iterable[str]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class UnlinkRequest(_message.Message):
    __slots__ = ("a", "b", "actor", "reason", "kinds", "preview", "seal_moving_conversations")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    SEAL_MOVING_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    a: Identifier
    b: Identifier
    actor: str
    reason: str
    kinds: _containers.RepeatedScalarFieldContainer[LinkKind]
    preview: bool
    seal_moving_conversations: bool
    def __init__(self, a: _Optional[_Union[Identifier, _Mapping]] = ..., b: _Optional[_Union[Identifier, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[LinkKind, str]]] = ..., preview: _Optional[bool] = ..., seal_moving_conversations: _Optional[bool] = ...) -> None: ...

class UnlinkResponse(_message.Message):
    __slots__ = ("links", "violations", "customer_ids", "events", "moving_conversations", "conversations_sealed")
    LINKS_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    MOVING_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_SEALED_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    moving_conversations: _containers.RepeatedScalarFieldContainer[str]
    conversations_sealed: int
    def __init__(self, links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ..., customer_ids: _Optional[_Iterable[str]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., moving_conversations: _Optional[_Iterable[str]] = ..., conversations_sealed: _Optional[int] = ...) -> None: ...

class SetGenericRequest(_message.Message):
    __slots__ = ("identifier", "generic", "actor")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    GENERIC_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    identifier: Identifier
    generic: bool
    actor: str
    def __init__(self, identifier: _Optional[_Union[Identifier, _Mapping]] = ..., generic: _Optional[bool] = ..., actor: _Optional[str] = ...) -> None: ...

class SetGenericResponse(_message.Message):
    __slots__ = ("violations", "customer_ids", "events")
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ..., customer_ids: _Optional[_Iterable[str]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class GetCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "identifier")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identifier: Identifier
    def __init__(self, customer_id: _Optional[str] = ..., identifier: _Optional[_Union[Identifier, _Mapping]] = ...) -> None: ...

class IdentifierInfo(_message.Message):
    __slots__ = ("identifier", "first_seen", "last_seen", "generic")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    GENERIC_FIELD_NUMBER: _ClassVar[int]
    identifier: Identifier
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    generic: bool
    def __init__(self, identifier: _Optional[_Union[Identifier, _Mapping]] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., generic: _Optional[bool] = ...) -> None: ...

class Customer(_message.Message):
    __slots__ = ("customer_id", "created_at", "aliases", "identifiers", "attributes", "attribute_history", "channels", "links")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    created_at: _timestamp_pb2.Timestamp
    aliases: _containers.RepeatedScalarFieldContainer[str]
    identifiers: _containers.RepeatedCompositeFieldContainer[IdentifierInfo]
    attributes: _containers.RepeatedCompositeFieldContainer[AttributeValue]
    attribute_history: _containers.RepeatedCompositeFieldContainer[AttributeValue]
    channels: _containers.RepeatedScalarFieldContainer[str]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    def __init__(self, customer_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., aliases: _Optional[_Iterable[str]] = ..., identifiers: _Optional[_Iterable[_Union[IdentifierInfo, _Mapping]]] = ..., attributes: _Optional[_Iterable[_Union[AttributeValue, _Mapping]]] = ..., attribute_history: _Optional[_Iterable[_Union[AttributeValue, _Mapping]]] = ..., channels: _Optional[_Iterable[str]] = ..., links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ...) -> None: ...

class GetCustomerResponse(_message.Message):
    __slots__ = ("customer",)
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("a", "b")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    a: Identifier
    b: Identifier
    def __init__(self, a: _Optional[_Union[Identifier, _Mapping]] = ..., b: _Optional[_Union[Identifier, _Mapping]] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("a", "b", "path", "assurance", "same_customer", "steps")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ASSURANCE_FIELD_NUMBER: _ClassVar[int]
    SAME_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    a: Identifier
    b: Identifier
    path: _containers.RepeatedCompositeFieldContainer[Link]
    assurance: LinkKind
    same_customer: bool
    steps: _containers.RepeatedScalarFieldContainer[LinkKind]
    def __init__(self, a: _Optional[_Union[Identifier, _Mapping]] = ..., b: _Optional[_Union[Identifier, _Mapping]] = ..., path: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., assurance: _Optional[_Union[LinkKind, str]] = ..., same_customer: _Optional[bool] = ..., steps: _Optional[_Iterable[_Union[LinkKind, str]]] = ...) -> None: ...

class IdentifierPair(_message.Message):
    __slots__ = ("a", "b")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    a: Identifier
    b: Identifier
    def __init__(self, a: _Optional[_Union[Identifier, _Mapping]] = ..., b: _Optional[_Union[Identifier, _Mapping]] = ...) -> None: ...

class SplitRequest(_message.Message):
    __slots__ = ("cut", "detach", "actor", "seal_moving_conversations")
    CUT_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SEAL_MOVING_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    cut: _containers.RepeatedCompositeFieldContainer[IdentifierPair]
    detach: _containers.RepeatedCompositeFieldContainer[Identifier]
    actor: str
    seal_moving_conversations: bool
    def __init__(self, cut: _Optional[_Iterable[_Union[IdentifierPair, _Mapping]]] = ..., detach: _Optional[_Iterable[_Union[Identifier, _Mapping]]] = ..., actor: _Optional[str] = ..., seal_moving_conversations: _Optional[bool] = ...) -> None: ...

class SplitPart(_message.Message):
    __slots__ = ("customer_id", "identifiers", "is_new", "moving_conversations")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    IS_NEW_FIELD_NUMBER: _ClassVar[int]
    MOVING_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identifiers: _containers.RepeatedCompositeFieldContainer[Identifier]
    is_new: bool
    moving_conversations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[Identifier, _Mapping]]] = ..., is_new: _Optional[bool] = ..., moving_conversations: _Optional[_Iterable[str]] = ...) -> None: ...

class SplitResponse(_message.Message):
    __slots__ = ("original_customer_id", "parts", "cut", "conversations_sealed")
    ORIGINAL_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    CUT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_SEALED_FIELD_NUMBER: _ClassVar[int]
    original_customer_id: str
    parts: _containers.RepeatedCompositeFieldContainer[SplitPart]
    cut: _containers.RepeatedCompositeFieldContainer[Link]
    conversations_sealed: int
    def __init__(self, original_customer_id: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[SplitPart, _Mapping]]] = ..., cut: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., conversations_sealed: _Optional[int] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("from_seq", "types")
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    from_seq: int
    types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, from_seq: _Optional[int] = ..., types: _Optional[_Iterable[str]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("seq", "type", "customer_id", "at", "payload")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    seq: int
    type: str
    customer_id: str
    at: _timestamp_pb2.Timestamp
    payload: _struct_pb2.Struct
    def __init__(self, seq: _Optional[int] = ..., type: _Optional[str] = ..., customer_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
