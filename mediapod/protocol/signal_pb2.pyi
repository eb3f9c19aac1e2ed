from . import models_pb2 as _models_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignalTarget(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUBLISHER: _ClassVar[SignalTarget]
    SUBSCRIBER: _ClassVar[SignalTarget]

class VideoQuality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOW: _ClassVar[VideoQuality]
    MEDIUM: _ClassVar[VideoQuality]
    HIGH: _ClassVar[VideoQuality]
PUBLISHER: SignalTarget
SUBSCRIBER: SignalTarget
LOW: VideoQuality
MEDIUM: VideoQuality
HIGH: VideoQuality

class SignalRequest(_message.Message):
    __slots__ = ("request_id", "join", "offer", "answer", "trickle", "add_track", "mute", "subscription", "leave", "remove_track", "ping", "track_settings")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    JOIN_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    TRICKLE_FIELD_NUMBER: _ClassVar[int]
    ADD_TRACK_FIELD_NUMBER: _ClassVar[int]
    MUTE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LEAVE_FIELD_NUMBER: _ClassVar[int]
    REMOVE_TRACK_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    TRACK_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    join: JoinRequest
    offer: SessionDescription
    answer: SessionDescription
    trickle: TrickleRequest
    add_track: AddTrackRequest
    mute: MuteTrackRequest
    subscription: UpdateSubscription
    leave: LeaveRequest
    remove_track: RemoveTrackRequest
    ping: Ping
    track_settings: UpdateTrackSettings
    def __init__(self, request_id: _Optional[int] = ..., join: _Optional[_Union[JoinRequest, _Mapping]] = ..., offer: _Optional[_Union[SessionDescription, _Mapping]] = ..., answer: _Optional[_Union[SessionDescription, _Mapping]] = ..., trickle: _Optional[_Union[TrickleRequest, _Mapping]] = ..., add_track: _Optional[_Union[AddTrackRequest, _Mapping]] = ..., mute: _Optional[_Union[MuteTrackRequest, _Mapping]] = ..., subscription: _Optional[_Union[UpdateSubscription, _Mapping]] = ..., leave: _Optional[_Union[LeaveRequest, _Mapping]] = ..., remove_track: _Optional[_Union[RemoveTrackRequest, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., track_settings: _Optional[_Union[UpdateTrackSettings, _Mapping]] = ...) -> None: ...

class SignalResponse(_message.Message):
    __slots__ = ("join", "answer", "offer", "trickle", "update", "track_published", "leave", "mute", "error", "room_update", "track_unpublished", "pong", "speakers_changed")
    JOIN_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    TRICKLE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    TRACK_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    LEAVE_FIELD_NUMBER: _ClassVar[int]
    MUTE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ROOM_UPDATE_FIELD_NUMBER: _ClassVar[int]
    TRACK_UNPUBLISHED_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    SPEAKERS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    join: JoinResponse
    answer: SessionDescription
    offer: SessionDescription
    trickle: TrickleRequest
    update: ParticipantUpdate
    track_published: TrackPublishedResponse
    leave: LeaveRequest
    mute: MuteTrackRequest
    error: ErrorResponse
    room_update: RoomUpdate
    track_unpublished: TrackUnpublishedResponse
    pong: Pong
    speakers_changed: SpeakersChanged
    def __init__(self, join: _Optional[_Union[JoinResponse, _Mapping]] = ..., answer: _Optional[_Union[SessionDescription, _Mapping]] = ..., offer: _Optional[_Union[SessionDescription, _Mapping]] = ..., trickle: _Optional[_Union[TrickleRequest, _Mapping]] = ..., update: _Optional[_Union[ParticipantUpdate, _Mapping]] = ..., track_published: _Optional[_Union[TrackPublishedResponse, _Mapping]] = ..., leave: _Optional[_Union[LeaveRequest, _Mapping]] = ..., mute: _Optional[_Union[MuteTrackRequest, _Mapping]] = ..., error: _Optional[_Union[ErrorResponse, _Mapping]] = ..., room_update: _Optional[_Union[RoomUpdate, _Mapping]] = ..., track_unpublished: _Optional[_Union[TrackUnpublishedResponse, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., speakers_changed: _Optional[_Union[SpeakersChanged, _Mapping]] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("token", "disable_auto_subscribe", "room", "data_format")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DISABLE_AUTO_SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    DATA_FORMAT_FIELD_NUMBER: _ClassVar[int]
    token: str
    disable_auto_subscribe: bool
    room: str
    data_format: str
    def __init__(self, token: _Optional[str] = ..., disable_auto_subscribe: _Optional[bool] = ..., room: _Optional[str] = ..., data_format: _Optional[str] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("room", "participant", "other_participants", "server_version", "node_id")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    OTHER_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    room: _models_pb2.Room
    participant: _models_pb2.ParticipantInfo
    other_participants: _containers.RepeatedCompositeFieldContainer[_models_pb2.ParticipantInfo]
    server_version: str
    node_id: str
    def __init__(self, room: _Optional[_Union[_models_pb2.Room, _Mapping]] = ..., participant: _Optional[_Union[_models_pb2.ParticipantInfo, _Mapping]] = ..., other_participants: _Optional[_Iterable[_Union[_models_pb2.ParticipantInfo, _Mapping]]] = ..., server_version: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...

class SessionDescription(_message.Message):
    __slots__ = ("type", "sdp")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SDP_FIELD_NUMBER: _ClassVar[int]
    type: str
    sdp: str
    def __init__(self, type: _Optional[str] = ..., sdp: _Optional[str] = ...) -> None: ...

class TrickleRequest(_message.Message):
    __slots__ = ("candidate_init", "target")
    CANDIDATE_INIT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    candidate_init: str
    target: SignalTarget
    def __init__(self, candidate_init: _Optional[str] = ..., target: _Optional[_Union[SignalTarget, str]] = ...) -> None: ...

class AddTrackRequest(_message.Message):
    __slots__ = ("cid", "name", "type", "source", "muted", "width", "height", "layers")
    CID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    cid: str
    name: str
    type: _models_pb2.TrackType
    source: _models_pb2.TrackSource
    muted: bool
    width: int
    height: int
    layers: _containers.RepeatedCompositeFieldContainer[_models_pb2.SimulcastLayer]
    def __init__(self, cid: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[_models_pb2.TrackType, str]] = ..., source: _Optional[_Union[_models_pb2.TrackSource, str]] = ..., muted: _Optional[bool] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., layers: _Optional[_Iterable[_Union[_models_pb2.SimulcastLayer, _Mapping]]] = ...) -> None: ...

class RemoveTrackRequest(_message.Message):
    __slots__ = ("sid",)
    SID_FIELD_NUMBER: _ClassVar[int]
    sid: str
    def __init__(self, sid: _Optional[str] = ...) -> None: ...

class TrackPublishedResponse(_message.Message):
    __slots__ = ("cid", "track")
    CID_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    cid: str
    track: _models_pb2.TrackInfo
    def __init__(self, cid: _Optional[str] = ..., track: _Optional[_Union[_models_pb2.TrackInfo, _Mapping]] = ...) -> None: ...

class TrackUnpublishedResponse(_message.Message):
    __slots__ = ("track_sid",)
    TRACK_SID_FIELD_NUMBER: _ClassVar[int]
    track_sid: str
    def __init__(self, track_sid: _Optional[str] = ...) -> None: ...

class MuteTrackRequest(_message.Message):
    __slots__ = ("sid", "muted")
    SID_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    sid: str
    muted: bool
    def __init__(self, sid: _Optional[str] = ..., muted: _Optional[bool] = ...) -> None: ...

class UpdateTrackSettings(_message.Message):
    __slots__ = ("track_sids", "quality", "width", "height", "max_temporal_layer")
    TRACK_SIDS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_TEMPORAL_LAYER_FIELD_NUMBER: _ClassVar[int]
    track_sids: _containers.RepeatedScalarFieldContainer[str]
    quality: VideoQuality
    width: int
    height: int
    max_temporal_layer: int
    def __init__(self, track_sids: _Optional[_Iterable[str]] = ..., quality: _Optional[_Union[VideoQuality, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., max_temporal_layer: _Optional[int] = ...) -> None: ...

class UpdateSubscription(_message.Message):
    __slots__ = ("track_sids", "subscribe")
    TRACK_SIDS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    track_sids: _containers.RepeatedScalarFieldContainer[str]
    subscribe: bool
    def __init__(self, track_sids: _Optional[_Iterable[str]] = ..., subscribe: _Optional[bool] = ...) -> None: ...

class ParticipantUpdate(_message.Message):
    __slots__ = ("participants",)
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    participants: _containers.RepeatedCompositeFieldContainer[_models_pb2.ParticipantInfo]
    def __init__(self, participants: _Optional[_Iterable[_Union[_models_pb2.ParticipantInfo, _Mapping]]] = ...) -> None: ...

class RoomUpdate(_message.Message):
    __slots__ = ("room",)
    ROOM_FIELD_NUMBER: _ClassVar[int]
    room: _models_pb2.Room
    def __init__(self, room: _Optional[_Union[_models_pb2.Room, _Mapping]] = ...) -> None: ...

class LeaveRequest(_message.Message):
    __slots__ = ("reason",)
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CLIENT_INITIATED: _ClassVar[LeaveRequest.Reason]
        ROOM_DELETED: _ClassVar[LeaveRequest.Reason]
        PARTICIPANT_REMOVED: _ClassVar[LeaveRequest.Reason]
        DUPLICATE_IDENTITY: _ClassVar[LeaveRequest.Reason]
        SERVER_SHUTDOWN: _ClassVar[LeaveRequest.Reason]
        TRANSPORT_FAILURE: _ClassVar[LeaveRequest.Reason]
        PROTOCOL_VIOLATION: _ClassVar[LeaveRequest.Reason]
        SIGNAL_STALLED: _ClassVar[LeaveRequest.Reason]
    CLIENT_INITIATED: LeaveRequest.Reason
    ROOM_DELETED: LeaveRequest.Reason
    PARTICIPANT_REMOVED: LeaveRequest.Reason
    DUPLICATE_IDENTITY: LeaveRequest.Reason
    SERVER_SHUTDOWN: LeaveRequest.Reason
    TRANSPORT_FAILURE: LeaveRequest.Reason
    PROTOCOL_VIOLATION: LeaveRequest.Reason
    SIGNAL_STALLED: LeaveRequest.Reason
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: LeaveRequest.Reason
    def __init__(self, reason: _Optional[_Union[LeaveRequest.Reason, str]] = ...) -> None: ...

class ErrorResponse(_message.Message):
    __slots__ = ("request_id", "code", "message")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    code: int
    message: str
    def __init__(self, request_id: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("timestamp",)
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    timestamp: int
    def __init__(self, timestamp: _Optional[int] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("last_ping_timestamp", "timestamp")
    LAST_PING_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    last_ping_timestamp: int
    timestamp: int
    def __init__(self, last_ping_timestamp: _Optional[int] = ..., timestamp: _Optional[int] = ...) -> None: ...

class SpeakersChanged(_message.Message):
    __slots__ = ("speakers",)
    SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    speakers: _containers.RepeatedCompositeFieldContainer[SpeakerInfo]
    def __init__(self, speakers: _Optional[_Iterable[_Union[SpeakerInfo, _Mapping]]] = ...) -> None: ...

class SpeakerInfo(_message.Message):
    __slots__ = ("sid", "level", "active")
    SID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    sid: str
    level: float
    active: bool
    def __init__(self, sid: _Optional[str] = ..., level: _Optional[float] = ..., active: _Optional[bool] = ...) -> None: ...
