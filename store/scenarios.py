"""Saved what-if scenarios: a name, a district and the changes, nothing computed."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.planning import SavedScenario, ScenarioChanges
from store.tables import ScenarioRow


class ScenarioRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def save(
        self,
        name: str,
        district: str | None,
        changes: ScenarioChanges,
        *,
        created_at: datetime,
        created_by: str,
    ) -> SavedScenario:
        row = ScenarioRow(
            name=name,
            district=district,
            changes=changes.model_dump(mode="json", exclude_defaults=True),
            created_at=created_at,
            created_by=created_by,
        )
        self._session.add(row)
        self._session.flush()
        return _saved(row)

    def get(self, scenario_id: int) -> SavedScenario | None:
        row = self._session.get(ScenarioRow, scenario_id)
        return _saved(row) if row is not None else None

    def list(self, *, districts: Collection[str] | None = None) -> list[SavedScenario]:
        """Newest first; `districts` limits to scenarios of those districts."""
        stmt = select(ScenarioRow).order_by(ScenarioRow.scenario_id.desc())
        if districts is not None:
            stmt = stmt.where(ScenarioRow.district.in_(sorted(districts)))
        return [_saved(row) for row in self._session.scalars(stmt)]


def _saved(row: ScenarioRow) -> SavedScenario:
    return SavedScenario(
        scenario_id=row.scenario_id,
        name=row.name,
        district=row.district,
        changes=ScenarioChanges.model_validate(row.changes),
        created_at=row.created_at,
        created_by=row.created_by,
    )
