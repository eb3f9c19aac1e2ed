"""LiveKit-format webhooks: room lifecycle events posted, signed, to the app backend."""
