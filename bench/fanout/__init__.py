"""Fan-out load generator (issue 14): saturates an SFU with cheap WebRTC peers; see __main__."""
