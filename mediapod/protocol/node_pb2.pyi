from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATE_UNSPECIFIED: _ClassVar[NodeState]
    STARTING: _ClassVar[NodeState]
    SERVING: _ClassVar[NodeState]
    DRAINING: _ClassVar[NodeState]
NODE_STATE_UNSPECIFIED: NodeState
STARTING: NodeState
SERVING: NodeState
DRAINING: NodeState

class NodeStats(_message.Message):
    __slots__ = ("started_at", "updated_at", "num_rooms", "num_clients", "num_tracks_in", "num_tracks_out", "bytes_in_per_sec", "bytes_out_per_sec", "packets_in_per_sec", "packets_out_per_sec", "cpu_load", "sys_load", "num_cpus")
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    NUM_ROOMS_FIELD_NUMBER: _ClassVar[int]
    NUM_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    NUM_TRACKS_IN_FIELD_NUMBER: _ClassVar[int]
    NUM_TRACKS_OUT_FIELD_NUMBER: _ClassVar[int]
    BYTES_IN_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    BYTES_OUT_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    PACKETS_IN_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    PACKETS_OUT_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    CPU_LOAD_FIELD_NUMBER: _ClassVar[int]
    SYS_LOAD_FIELD_NUMBER: _ClassVar[int]
    NUM_CPUS_FIELD_NUMBER: _ClassVar[int]
    started_at: int
    updated_at: int
    num_rooms: int
    num_clients: int
    num_tracks_in: int
    num_tracks_out: int
    bytes_in_per_sec: float
    bytes_out_per_sec: float
    packets_in_per_sec: float
    packets_out_per_sec: float
    cpu_load: float
    sys_load: float
    num_cpus: int
    def __init__(self, started_at: _Optional[int] = ..., updated_at: _Optional[int] = ..., num_rooms: _Optional[int] = ..., num_clients: _Optional[int] = ..., num_tracks_in: _Optional[int] = ..., num_tracks_out: _Optional[int] = ..., bytes_in_per_sec: _Optional[float] = ..., bytes_out_per_sec: _Optional[float] = ..., packets_in_per_sec: _Optional[float] = ..., packets_out_per_sec: _Optional[float] = ..., cpu_load: _Optional[float] = ..., sys_load: _Optional[float] = ..., num_cpus: _Optional[int] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "ip", "grpc_port", "udp_port", "region", "state", "stats", "pod", "worker")
    ID_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    GRPC_PORT_FIELD_NUMBER: _ClassVar[int]
    UDP_PORT_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    id: str
    ip: str
    grpc_port: int
    udp_port: int
    region: str
    state: NodeState
    stats: NodeStats
    pod: str
    worker: int
    def __init__(self, id: _Optional[str] = ..., ip: _Optional[str] = ..., grpc_port: _Optional[int] = ..., udp_port: _Optional[int] = ..., region: _Optional[str] = ..., state: _Optional[_Union[NodeState, str]] = ..., stats: _Optional[_Union[NodeStats, _Mapping]] = ..., pod: _Optional[str] = ..., worker: _Optional[int] = ...) -> None: ...
