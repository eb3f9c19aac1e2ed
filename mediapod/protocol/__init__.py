"""Generated protobuf and gRPC stubs for proto/switchboard/v1 (regenerate with scripts/gen_proto.py)."""
