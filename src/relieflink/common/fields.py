"""Annotated field types reused by schemas across domains."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Code = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Latitude = Annotated[float, Field(ge=-90, le=90, description="WGS-84 degrees")]
Longitude = Annotated[float, Field(ge=-180, le=180, description="WGS-84 degrees")]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Search = Annotated[
    str | None, Field(default=None, max_length=100, description="code or name contains")
]
