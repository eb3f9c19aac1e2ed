"""The Switchboard operator: Room and SFUNode custom resources, reconciled by kopf."""
