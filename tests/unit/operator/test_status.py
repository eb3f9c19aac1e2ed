"""How the operator writes status: conditions that keep their transition time, patches of changes only."""

from __future__ import annotations

from sfu_operator.resources import AUTO_CREATED_LABEL, auto_room
from sfu_operator.scheduler import LiveRoom, RoomSpec
from sfu_operator.sync import changed, condition


def test_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = condition(None, "Scheduled", False, "NoNodes", "none")
    again = condition(first, "Scheduled", False, "NoEligibleNode", "all draining")
    assert again[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert (again[0]["reason"], again[0]["message"]) == ("NoEligibleNode", "all draining")


def test_condition_moves_its_transition_time_when_it_flips() -> None:
    old = [{"type": "Scheduled", "status": "False", "reason": "NoNodes", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    [flipped] = condition(old, "Scheduled", True, "Scheduled", "on a")
    assert flipped["status"] == "True" and flipped["lastTransitionTime"] != "2020-01-01T00:00:00Z"


def test_condition_leaves_other_conditions_alone() -> None:
    other = {"type": "Other", "status": "True", "reason": "X", "message": "", "lastTransitionTime": "t"}
    assert other in condition([other], "Scheduled", True, "Scheduled", "on a")


def test_status_patch_holds_only_what_changed() -> None:
    assert changed({"phase": "Active", "participants": 2}, {"phase": "Active", "participants": 3}) == {"participants": 3}
    assert changed({"phase": "Active"}, {"phase": "Active"}) == {}


def test_auto_created_room_copies_the_live_settings_and_carries_the_label() -> None:
    body = auto_room("walk-in", LiveRoom("a", spec=RoomSpec(max_participants=5, empty_timeout=300, departure_timeout=20)))
    assert body["metadata"] == {"name": "walk-in", "labels": {AUTO_CREATED_LABEL: "true"}}
    assert body["spec"] == {"maxParticipants": 5, "emptyTimeout": 300, "departureTimeout": 20}
