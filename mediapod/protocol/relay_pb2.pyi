from . import models_pb2 as _models_pb2
from . import room_service_pb2 as _room_service_pb2
from . import signal_pb2 as _signal_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RelayMessage(_message.Message):
    __slots__ = ("from_node", "session_id", "start", "request", "response", "end", "call", "reply", "agent_offer", "agent_answer", "agent_end", "node_gone")
    FROM_NODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    AGENT_OFFER_FIELD_NUMBER: _ClassVar[int]
    AGENT_ANSWER_FIELD_NUMBER: _ClassVar[int]
    AGENT_END_FIELD_NUMBER: _ClassVar[int]
    NODE_GONE_FIELD_NUMBER: _ClassVar[int]
    from_node: str
    session_id: str
    start: SessionStart
    request: _signal_pb2.SignalRequest
    response: _signal_pb2.SignalResponse
    end: SessionEnd
    call: RoomCall
    reply: RoomReply
    agent_offer: bytes
    agent_answer: bytes
    agent_end: bytes
    node_gone: NodeGone
    def __init__(self, from_node: _Optional[str] = ..., session_id: _Optional[str] = ..., start: _Optional[_Union[SessionStart, _Mapping]] = ..., request: _Optional[_Union[_signal_pb2.SignalRequest, _Mapping]] = ..., response: _Optional[_Union[_signal_pb2.SignalResponse, _Mapping]] = ..., end: _Optional[_Union[SessionEnd, _Mapping]] = ..., call: _Optional[_Union[RoomCall, _Mapping]] = ..., reply: _Optional[_Union[RoomReply, _Mapping]] = ..., agent_offer: _Optional[bytes] = ..., agent_answer: _Optional[bytes] = ..., agent_end: _Optional[bytes] = ..., node_gone: _Optional[_Union[NodeGone, _Mapping]] = ...) -> None: ...

class NodeGone(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    def __init__(self, node: _Optional[str] = ...) -> None: ...

class SessionStart(_message.Message):
    __slots__ = ("join", "room")
    JOIN_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    join: _signal_pb2.JoinRequest
    room: str
    def __init__(self, join: _Optional[_Union[_signal_pb2.JoinRequest, _Mapping]] = ..., room: _Optional[str] = ...) -> None: ...

class SessionEnd(_message.Message):
    __slots__ = ("code", "message", "retry_elsewhere")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_ELSEWHERE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    retry_elsewhere: bool
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., retry_elsewhere: _Optional[bool] = ...) -> None: ...

class RoomCall(_message.Message):
    __slots__ = ("token", "create_room", "list_rooms", "delete_room", "list_participants", "remove_participant", "mute_published_track", "get_participant", "update_participant", "update_subscriptions", "send_data", "update_room_metadata")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREATE_ROOM_FIELD_NUMBER: _ClassVar[int]
    LIST_ROOMS_FIELD_NUMBER: _ClassVar[int]
    DELETE_ROOM_FIELD_NUMBER: _ClassVar[int]
    LIST_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    MUTE_PUBLISHED_TRACK_FIELD_NUMBER: _ClassVar[int]
    GET_PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    SEND_DATA_FIELD_NUMBER: _ClassVar[int]
    UPDATE_ROOM_METADATA_FIELD_NUMBER: _ClassVar[int]
    token: str
    create_room: _room_service_pb2.CreateRoomRequest
    list_rooms: _room_service_pb2.ListRoomsRequest
    delete_room: _room_service_pb2.DeleteRoomRequest
    list_participants: _room_service_pb2.ListParticipantsRequest
    remove_participant: _room_service_pb2.RoomParticipantIdentity
    mute_published_track: _room_service_pb2.MuteRoomTrackRequest
    get_participant: _room_service_pb2.RoomParticipantIdentity
    update_participant: _room_service_pb2.UpdateParticipantRequest
    update_subscriptions: _room_service_pb2.UpdateSubscriptionsRequest
    send_data: _room_service_pb2.SendDataRequest
    update_room_metadata: _room_service_pb2.UpdateRoomMetadataRequest
    def __init__(self, token: _Optional[str] = ..., create_room: _Optional[_Union[_room_service_pb2.CreateRoomRequest, _Mapping]] = ..., list_rooms: _Optional[_Union[_room_service_pb2.ListRoomsRequest, _Mapping]] = ..., delete_room: _Optional[_Union[_room_service_pb2.DeleteRoomRequest, _Mapping]] = ..., list_participants: _Optional[_Union[_room_service_pb2.ListParticipantsRequest, _Mapping]] = ..., remove_participant: _Optional[_Union[_room_service_pb2.RoomParticipantIdentity, _Mapping]] = ..., mute_published_track: _Optional[_Union[_room_service_pb2.MuteRoomTrackRequest, _Mapping]] = ..., get_participant: _Optional[_Union[_room_service_pb2.RoomParticipantIdentity, _Mapping]] = ..., update_participant: _Optional[_Union[_room_service_pb2.UpdateParticipantRequest, _Mapping]] = ..., update_subscriptions: _Optional[_Union[_room_service_pb2.UpdateSubscriptionsRequest, _Mapping]] = ..., send_data: _Optional[_Union[_room_service_pb2.SendDataRequest, _Mapping]] = ..., update_room_metadata: _Optional[_Union[_room_service_pb2.UpdateRoomMetadataRequest, _Mapping]] = ...) -> None: ...

class RoomReply(_message.Message):
    __slots__ = ("code", "message", "room", "rooms", "deleted", "participants", "removed", "muted", "participant", "subscriptions_updated", "data_sent")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    DATA_SENT_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    room: _models_pb2.Room
    rooms: _room_service_pb2.ListRoomsResponse
    deleted: _room_service_pb2.DeleteRoomResponse
    participants: _room_service_pb2.ListParticipantsResponse
    removed: _room_service_pb2.RemoveParticipantResponse
    muted: _room_service_pb2.MuteRoomTrackResponse
    participant: _models_pb2.ParticipantInfo
    subscriptions_updated: _room_service_pb2.UpdateSubscriptionsResponse
    data_sent: _room_service_pb2.SendDataResponse
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., room: _Optional[_Union[_models_pb2.Room, _Mapping]] = ..., rooms: _Optional[_Union[_room_service_pb2.ListRoomsResponse, _Mapping]] = ..., deleted: _Optional[_Union[_room_service_pb2.DeleteRoomResponse, _Mapping]] = ..., participants: _Optional[_Union[_room_service_pb2.ListParticipantsResponse, _Mapping]] = ..., removed: _Optional[_Union[_room_service_pb2.RemoveParticipantResponse, _Mapping]] = ..., muted: _Optional[_Union[_room_service_pb2.MuteRoomTrackResponse, _Mapping]] = ..., participant: _Optional[_Union[_models_pb2.ParticipantInfo, _Mapping]] = ..., subscriptions_updated: _Optional[_Union[_room_service_pb2.UpdateSubscriptionsResponse, _Mapping]] = ..., data_sent: _Optional[_Union[_room_service_pb2.SendDataResponse, _Mapping]] = ...) -> None: ...
