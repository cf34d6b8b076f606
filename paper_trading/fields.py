"""A DecimalField that stays exact on SQLite.

SQLite has no decimal type: Django stores decimals with NUMERIC affinity, which keeps only 15
significant digits. Token quantities need 18 decimal places, so on SQLite this field stores the
canonical text instead; PostgreSQL keeps its exact `numeric`.
"""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Expression


class ExactDecimalField(models.DecimalField):  # type: ignore[type-arg]
    def get_internal_type(self) -> str:
        # Not "DecimalField": that name makes SQLite's backend add its lossy float converter.
        return "ExactDecimalField"

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "sqlite":
            return "text"
        return f"numeric({self.max_digits}, {self.decimal_places})"

    def get_db_prep_value(
        self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False
    ) -> Any:
        if connection.vendor == "sqlite" and value is not None:
            # In the field's own precision: the default context's 28 digits refused (500) values
            # the column holds, e.g. a USD amount of 1e20 (21 whole digits + 8 places).
            step = Decimal(1).scaleb(-self.decimal_places)
            return str(self.to_python(value).quantize(step, context=Context(prec=self.max_digits)))
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(
        self, value: Any, expression: Expression, connection: BaseDatabaseWrapper
    ) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value))
