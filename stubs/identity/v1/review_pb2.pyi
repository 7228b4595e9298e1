import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from stubs.identity.v1 import identity_pb2 as _identity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReviewOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVIEW_ORDER_UNSPECIFIED: _ClassVar[ReviewOrder]
    REVIEW_ORDER_AGE: _ClassVar[ReviewOrder]
    REVIEW_ORDER_SCORE: _ClassVar[ReviewOrder]

class ConstraintKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSTRAINT_KIND_UNSPECIFIED: _ClassVar[ConstraintKind]
    CONSTRAINT_KIND_CANNOT_LINK: _ClassVar[ConstraintKind]
    CONSTRAINT_KIND_MUST_LINK: _ClassVar[ConstraintKind]
REVIEW_ORDER_UNSPECIFIED: ReviewOrder
REVIEW_ORDER_AGE: ReviewOrder
REVIEW_ORDER_SCORE: ReviewOrder
CONSTRAINT_KIND_UNSPECIFIED: ConstraintKind
CONSTRAINT_KIND_CANNOT_LINK: ConstraintKind
CONSTRAINT_KIND_MUST_LINK: ConstraintKind

class Constraint(_message.Message):
    __slots__ = ("constraint_id", "kind", "a", "b", "origin", "link_id", "actor", "reason", "created_at", "withdrawn_at", "withdrawn_by", "withdrawal_reason")
    CONSTRAINT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_AT_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_BY_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWAL_REASON_FIELD_NUMBER: _ClassVar[int]
    constraint_id: str
    kind: ConstraintKind
    a: _identity_pb2.Identifier
    b: _identity_pb2.Identifier
    origin: str
    link_id: str
    actor: str
    reason: str
    created_at: _timestamp_pb2.Timestamp
    withdrawn_at: _timestamp_pb2.Timestamp
    withdrawn_by: str
    withdrawal_reason: str
    def __init__(self, constraint_id: _Optional[str] = ..., kind: _Optional[_Union[ConstraintKind, str]] = ..., a: _Optional[_Union[_identity_pb2.Identifier, _Mapping]] = ..., b: _Optional[_Union[_identity_pb2.Identifier, _Mapping]] = ..., origin: _Optional[str] = ..., link_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., withdrawn_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., withdrawn_by: _Optional[str] = ..., withdrawal_reason: _Optional[str] = ...) -> None: ...

class ListReviewQueueRequest(_message.Message):
    __slots__ = ("customer", "order", "page_size", "page_token")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customer: str
    order: ReviewOrder
    page_size: int
    page_token: str
    def __init__(self, customer: _Optional[str] = ..., order: _Optional[_Union[ReviewOrder, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ReviewItem(_message.Message):
    __slots__ = ("link", "customer_a", "customer_b", "waterfall")
    LINK_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_A_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_B_FIELD_NUMBER: _ClassVar[int]
    WATERFALL_FIELD_NUMBER: _ClassVar[int]
    link: _identity_pb2.Link
    customer_a: str
    customer_b: str
    waterfall: _containers.RepeatedCompositeFieldContainer[_identity_pb2.ComparisonContribution]
    def __init__(self, link: _Optional[_Union[_identity_pb2.Link, _Mapping]] = ..., customer_a: _Optional[str] = ..., customer_b: _Optional[str] = ..., waterfall: _Optional[_Iterable[_Union[_identity_pb2.ComparisonContribution, _Mapping]]] = ...) -> None: ...

class ListReviewQueueResponse(_message.Message):
    __slots__ = ("items", "total", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ReviewItem]
    total: int
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[ReviewItem, _Mapping]]] = ..., total: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AcceptReviewRequest(_message.Message):
    __slots__ = ("link_id", "actor", "reason")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    actor: str
    reason: str
    def __init__(self, link_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AcceptReviewResponse(_message.Message):
    __slots__ = ("links", "violations", "customer_ids", "constraint")
    LINKS_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[_identity_pb2.Link]
    violations: _containers.RepeatedCompositeFieldContainer[_identity_pb2.Violation]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    constraint: Constraint
    def __init__(self, links: _Optional[_Iterable[_Union[_identity_pb2.Link, _Mapping]]] = ..., violations: _Optional[_Iterable[_Union[_identity_pb2.Violation, _Mapping]]] = ..., customer_ids: _Optional[_Iterable[str]] = ..., constraint: _Optional[_Union[Constraint, _Mapping]] = ...) -> None: ...

class RejectReviewRequest(_message.Message):
    __slots__ = ("link_id", "actor", "reason")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    actor: str
    reason: str
    def __init__(self, link_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RejectReviewResponse(_message.Message):
    __slots__ = ("customer_ids", "constraint")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    constraint: Constraint
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., constraint: _Optional[_Union[Constraint, _Mapping]] = ...) -> None: ...

class ListConstraintsRequest(_message.Message):
    __slots__ = ("customer", "include_withdrawn", "page_size", "page_token")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customer: str
    include_withdrawn: bool
    page_size: int
    page_token: str
    def __init__(self, customer: _Optional[str] = ..., include_withdrawn: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConstraintsResponse(_message.Message):
    __slots__ = ("constraints", "next_page_token")
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    constraints: _containers.RepeatedCompositeFieldContainer[Constraint]
    next_page_token: str
    def __init__(self, constraints: _Optional[_Iterable[_Union[Constraint, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WithdrawConstraintRequest(_message.Message):
    __slots__ = ("constraint_id", "actor", "reason")
    CONSTRAINT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    constraint_id: str
    actor: str
    reason: str
    def __init__(self, constraint_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WithdrawConstraintResponse(_message.Message):
    __slots__ = ("constraint",)
    CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    constraint: Constraint
    def __init__(self, constraint: _Optional[_Union[Constraint, _Mapping]] = ...) -> None: ...
