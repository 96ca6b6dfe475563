"""Annotated field types reused by schemas across domains."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le
from pydantic import Field, StringConstraints

# The database's integer columns are 32-bit (PostgreSQL ``integer``); amounts in fen are 64-bit.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
BIGINT_MAX = 2**63 - 1
# Characters no text input may hold: C0 controls but tab, line feed and carriage return, and DEL.
# PostgreSQL refuses NUL in text; the others only ever arrive by mistake or malice.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

Code = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Latitude = Annotated[float, Field(ge=-90, le=90, description="WGS-84 degrees")]
Longitude = Annotated[float, Field(ge=-180, le=180, description="WGS-84 degrees")]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Fen = Annotated[int, Field(ge=0, le=BIGINT_MAX, description="an amount in fen (1/100 yuan)")]
# For route signatures (path and query parameters); request models are bounded by StrictModel.
Id = Annotated[int, Ge(1), Le(INT_MAX)]
Count = Annotated[int, Ge(0), Le(INT_MAX)]
Days = Annotated[int, Ge(0), Le(3660)]  # ten years: a date that far off is a typing error
Text = Annotated[str, StringConstraints(max_length=200, pattern=NO_CONTROL_CHARACTERS)]
Search = Annotated[
    str | None,
    Field(
        default=None,
        max_length=100,
        pattern=NO_CONTROL_CHARACTERS,
        description="code or name contains",
    ),
]
