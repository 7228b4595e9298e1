import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from stubs.identity.v1 import identity_pb2 as _identity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_ACTIVE: _ClassVar[Status]
    STATUS_INACTIVE: _ClassVar[Status]
    STATUS_ESCALATED: _ClassVar[Status]
    STATUS_CLOSED: _ClassVar[Status]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_CUSTOMER: _ClassVar[Role]
    ROLE_BOT: _ClassVar[Role]
    ROLE_AGENT: _ClassVar[Role]
STATUS_UNSPECIFIED: Status
STATUS_ACTIVE: Status
STATUS_INACTIVE: Status
STATUS_ESCALATED: Status
STATUS_CLOSED: Status
ROLE_UNSPECIFIED: Role
ROLE_CUSTOMER: Role
ROLE_BOT: Role
ROLE_AGENT: Role

class Caller(_message.Message):
    __slots__ = ("channel", "identifier", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    channel: str
    identifier: _identity_pb2.Identifier
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, channel: _Optional[str] = ..., identifier: _Optional[_Union[_identity_pb2.Identifier, _Mapping]] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Context(_message.Message):
    __slots__ = ("topic", "intent", "slots")
    class SlotsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    intent: str
    slots: _containers.ScalarMap[str, str]
    def __init__(self, topic: _Optional[str] = ..., intent: _Optional[str] = ..., slots: _Optional[_Mapping[str, str]] = ...) -> None: ...

class State(_message.Message):
    __slots__ = ("flow", "step", "data")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    flow: str
    step: str
    data: _struct_pb2.Struct
    def __init__(self, flow: _Optional[str] = ..., step: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Turn(_message.Message):
    __slots__ = ("seq", "role", "channel", "identifier", "text", "intent", "topic", "at")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    role: Role
    channel: str
    identifier: _identity_pb2.Identifier
    text: str
    intent: str
    topic: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, seq: _Optional[int] = ..., role: _Optional[_Union[Role, str]] = ..., channel: _Optional[str] = ..., identifier: _Optional[_Union[_identity_pb2.Identifier, _Mapping]] = ..., text: _Optional[str] = ..., intent: _Optional[str] = ..., topic: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("conversation_id", "status", "channels", "disclosed", "context", "state", "version", "turns", "created_at", "updated_at", "closed_at", "escalation_reason", "assurance", "channel_switches", "resumed_count", "last_channel", "carried_from")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DISCLOSED_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_REASON_FIELD_NUMBER: _ClassVar[int]
    ASSURANCE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_SWITCHES_FIELD_NUMBER: _ClassVar[int]
    RESUMED_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CARRIED_FROM_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    status: Status
    channels: _containers.RepeatedScalarFieldContainer[str]
    disclosed: bool
    context: Context
    state: State
    version: int
    turns: _containers.RepeatedCompositeFieldContainer[Turn]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    escalation_reason: str
    assurance: _identity_pb2.LinkKind
    channel_switches: int
    resumed_count: int
    last_channel: str
    carried_from: str
    def __init__(self, conversation_id: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., channels: _Optional[_Iterable[str]] = ..., disclosed: _Optional[bool] = ..., context: _Optional[_Union[Context, _Mapping]] = ..., state: _Optional[_Union[State, _Mapping]] = ..., version: _Optional[int] = ..., turns: _Optional[_Iterable[_Union[Turn, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., escalation_reason: _Optional[str] = ..., assurance: _Optional[_Union[_identity_pb2.LinkKind, str]] = ..., channel_switches: _Optional[int] = ..., resumed_count: _Optional[int] = ..., last_channel: _Optional[str] = ..., carried_from: _Optional[str] = ...) -> None: ...

class StartOrResumeRequest(_message.Message):
    __slots__ = ("channel", "identifiers", "attributes", "proof", "actor")
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
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    channel: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_identity_pb2.Identifier]
    attributes: _containers.ScalarMap[str, str]
    proof: _identity_pb2.Proof
    actor: str
    def __init__(self, channel: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_identity_pb2.Identifier, _Mapping]]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., proof: _Optional[_Union[_identity_pb2.Proof, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class StartOrResumeResponse(_message.Message):
    __slots__ = ("conversation", "resumed", "resumed_from_channel", "customer_id", "assurance", "step_up_required", "step_up_channels", "carried_over_from", "step_up_conversation_id")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FROM_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ASSURANCE_FIELD_NUMBER: _ClassVar[int]
    STEP_UP_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    STEP_UP_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CARRIED_OVER_FROM_FIELD_NUMBER: _ClassVar[int]
    STEP_UP_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    resumed: bool
    resumed_from_channel: str
    customer_id: str
    assurance: _identity_pb2.LinkKind
    step_up_required: bool
    step_up_channels: _containers.RepeatedScalarFieldContainer[str]
    carried_over_from: str
    step_up_conversation_id: str
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ..., resumed: _Optional[bool] = ..., resumed_from_channel: _Optional[str] = ..., customer_id: _Optional[str] = ..., assurance: _Optional[_Union[_identity_pb2.LinkKind, str]] = ..., step_up_required: _Optional[bool] = ..., step_up_channels: _Optional[_Iterable[str]] = ..., carried_over_from: _Optional[str] = ..., step_up_conversation_id: _Optional[str] = ...) -> None: ...

class AppendTurnRequest(_message.Message):
    __slots__ = ("conversation_id", "caller", "role", "text", "intent", "topic")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    caller: Caller
    role: Role
    text: str
    intent: str
    topic: str
    def __init__(self, conversation_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ..., role: _Optional[_Union[Role, str]] = ..., text: _Optional[str] = ..., intent: _Optional[str] = ..., topic: _Optional[str] = ...) -> None: ...

class AppendTurnResponse(_message.Message):
    __slots__ = ("turn",)
    TURN_FIELD_NUMBER: _ClassVar[int]
    turn: Turn
    def __init__(self, turn: _Optional[_Union[Turn, _Mapping]] = ...) -> None: ...

class UpdateContextRequest(_message.Message):
    __slots__ = ("conversation_id", "caller", "expected_version", "context")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    caller: Caller
    expected_version: int
    context: Context
    def __init__(self, conversation_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ..., expected_version: _Optional[int] = ..., context: _Optional[_Union[Context, _Mapping]] = ...) -> None: ...

class UpdateStateRequest(_message.Message):
    __slots__ = ("conversation_id", "caller", "expected_version", "state")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    caller: Caller
    expected_version: int
    state: State
    def __init__(self, conversation_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ..., expected_version: _Optional[int] = ..., state: _Optional[_Union[State, _Mapping]] = ...) -> None: ...

class ConversationResponse(_message.Message):
    __slots__ = ("conversation",)
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ...) -> None: ...

class GetConversationRequest(_message.Message):
    __slots__ = ("conversation_id", "caller")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    caller: Caller
    def __init__(self, conversation_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class ListConversationsRequest(_message.Message):
    __slots__ = ("caller", "statuses", "channel", "page_size", "page_token")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    statuses: _containers.RepeatedScalarFieldContainer[Status]
    channel: str
    page_size: int
    page_token: str
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., statuses: _Optional[_Iterable[_Union[Status, str]]] = ..., channel: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConversationsResponse(_message.Message):
    __slots__ = ("conversations", "next_page_token")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[Conversation]
    next_page_token: str
    def __init__(self, conversations: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SuggestHandoffRequest(_message.Message):
    __slots__ = ("conversation_id", "caller")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    caller: Caller
    def __init__(self, conversation_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class SuggestHandoffResponse(_message.Message):
    __slots__ = ("channel", "purpose", "reason", "message")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    purpose: str
    reason: str
    message: str
    def __init__(self, channel: _Optional[str] = ..., purpose: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class CreateHandoffRequest(_message.Message):
    __slots__ = ("conversation_id", "caller", "channel")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    caller: Caller
    channel: str
    def __init__(self, conversation_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ..., channel: _Optional[str] = ...) -> None: ...

class CreateHandoffResponse(_message.Message):
    __slots__ = ("code", "link", "channel", "expires_at")
    CODE_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    code: str
    link: str
    channel: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, code: _Optional[str] = ..., link: _Optional[str] = ..., channel: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RedeemHandoffRequest(_message.Message):
    __slots__ = ("code", "channel", "identifiers", "actor")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    code: str
    channel: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_identity_pb2.Identifier]
    actor: str
    def __init__(self, code: _Optional[str] = ..., channel: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_identity_pb2.Identifier, _Mapping]]] = ..., actor: _Optional[str] = ...) -> None: ...

class StartStepUpRequest(_message.Message):
    __slots__ = ("caller", "conversation_id", "channel")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    conversation_id: str
    channel: str
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., conversation_id: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class StartStepUpResponse(_message.Message):
    __slots__ = ("step_up_id", "sent_to", "expires_at")
    STEP_UP_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_TO_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    step_up_id: str
    sent_to: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, step_up_id: _Optional[str] = ..., sent_to: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CompleteStepUpRequest(_message.Message):
    __slots__ = ("step_up_id", "caller", "code")
    STEP_UP_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    step_up_id: str
    caller: Caller
    code: str
    def __init__(self, step_up_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ..., code: _Optional[str] = ...) -> None: ...

class CompleteStepUpResponse(_message.Message):
    __slots__ = ("verified",)
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    verified: bool
    def __init__(self, verified: _Optional[bool] = ...) -> None: ...

class EscalateRequest(_message.Message):
    __slots__ = ("conversation_id", "caller", "reason")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    caller: Caller
    reason: str
    def __init__(self, conversation_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ProfileAttribute(_message.Message):
    __slots__ = ("name", "value", "identifier", "source", "channel", "observed_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    identifier: _identity_pb2.Identifier
    source: str
    channel: str
    observed_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., identifier: _Optional[_Union[_identity_pb2.Identifier, _Mapping]] = ..., source: _Optional[str] = ..., channel: _Optional[str] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CustomerProfile(_message.Message):
    __slots__ = ("customer_id", "identifiers", "attributes", "channels")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_identity_pb2.Identifier]
    attributes: _containers.RepeatedCompositeFieldContainer[ProfileAttribute]
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_identity_pb2.Identifier, _Mapping]]] = ..., attributes: _Optional[_Iterable[_Union[ProfileAttribute, _Mapping]]] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

class EscalateResponse(_message.Message):
    __slots__ = ("conversation", "history", "profile", "open_flows", "reason")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    OPEN_FLOWS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    history: _containers.RepeatedCompositeFieldContainer[Conversation]
    profile: CustomerProfile
    open_flows: _containers.RepeatedCompositeFieldContainer[Conversation]
    reason: str
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ..., history: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ..., profile: _Optional[_Union[CustomerProfile, _Mapping]] = ..., open_flows: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...

class CloseRequest(_message.Message):
    __slots__ = ("conversation_id", "caller")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    caller: Caller
    def __init__(self, conversation_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class RecycleIdentifierRequest(_message.Message):
    __slots__ = ("identifier", "actor", "reason")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    identifier: _identity_pb2.Identifier
    actor: str
    reason: str
    def __init__(self, identifier: _Optional[_Union[_identity_pb2.Identifier, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RecycleIdentifierResponse(_message.Message):
    __slots__ = ("conversations_sealed", "customer_id")
    CONVERSATIONS_SEALED_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    conversations_sealed: int
    customer_id: str
    def __init__(self, conversations_sealed: _Optional[int] = ..., customer_id: _Optional[str] = ...) -> None: ...

class RecordConsentRequest(_message.Message):
    __slots__ = ("identifier", "channel", "purpose", "granted", "source")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    identifier: _identity_pb2.Identifier
    channel: str
    purpose: str
    granted: bool
    source: str
    def __init__(self, identifier: _Optional[_Union[_identity_pb2.Identifier, _Mapping]] = ..., channel: _Optional[str] = ..., purpose: _Optional[str] = ..., granted: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class Consent(_message.Message):
    __slots__ = ("identifier", "channel", "purpose", "granted", "source", "at")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    identifier: _identity_pb2.Identifier
    channel: str
    purpose: str
    granted: bool
    source: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, identifier: _Optional[_Union[_identity_pb2.Identifier, _Mapping]] = ..., channel: _Optional[str] = ..., purpose: _Optional[str] = ..., granted: _Optional[bool] = ..., source: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetConsentsRequest(_message.Message):
    __slots__ = ("identifier",)
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    identifier: _identity_pb2.Identifier
    def __init__(self, identifier: _Optional[_Union[_identity_pb2.Identifier, _Mapping]] = ...) -> None: ...

class GetConsentsResponse(_message.Message):
    __slots__ = ("current", "history")
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    current: _containers.RepeatedCompositeFieldContainer[Consent]
    history: _containers.RepeatedCompositeFieldContainer[Consent]
    def __init__(self, current: _Optional[_Iterable[_Union[Consent, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[Consent, _Mapping]]] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ("customers", "multi_channel_share", "conversations", "resumed", "channel_switches", "escalation_rate", "median_time_to_close_s")
    class MedianTimeToCloseSEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    MULTI_CHANNEL_SHARE_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_SWITCHES_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_RATE_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_TIME_TO_CLOSE_S_FIELD_NUMBER: _ClassVar[int]
    customers: int
    multi_channel_share: float
    conversations: int
    resumed: int
    channel_switches: int
    escalation_rate: float
    median_time_to_close_s: _containers.ScalarMap[str, float]
    def __init__(self, customers: _Optional[int] = ..., multi_channel_share: _Optional[float] = ..., conversations: _Optional[int] = ..., resumed: _Optional[int] = ..., channel_switches: _Optional[int] = ..., escalation_rate: _Optional[float] = ..., median_time_to_close_s: _Optional[_Mapping[str, float]] = ...) -> None: ...
