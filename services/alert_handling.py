"""Where people are with an alert, folded from its actions (oldest first)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from schemas.alert_actions import ActionKind, AlertAction, AlertHandling


def handling_of(alert_id: str, actions: Iterable[AlertAction]) -> AlertHandling:
    handling = AlertHandling(alert_id=alert_id)
    for action in actions:
        update: dict[str, object] = {"last_action_at": action.at}
        if action.action is ActionKind.acknowledged and handling.acknowledged_at is None:
            update |= {"acknowledged_at": action.at, "acknowledged_by": action.by_label}
        if action.action is ActionKind.assigned:
            update["assignee"] = action.assignee
        if action.note:
            update["notes"] = handling.notes + 1
        handling = handling.model_copy(update=update)
    return handling


def handling_by_alert(actions: Iterable[AlertAction]) -> dict[str, AlertHandling]:
    grouped: defaultdict[str, list[AlertAction]] = defaultdict(list)
    for action in actions:
        grouped[action.alert_id].append(action)
    return {alert_id: handling_of(alert_id, found) for alert_id, found in grouped.items()}
