"""What a household says about its notices, and reads back."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from relieflink.common.schemas import ReadModel, StrictModel


class PreferenceUpdate(StrictModel):
    """Only what is given changes; ``email: ""`` removes the address."""

    language: Literal["zh", "en"] | None = None
    email: str | None = Field(default=None, max_length=200)
    opted_out: bool | None = None


class PreferenceRead(ReadModel):
    language: str
    email: str | None
    opted_out: bool
    channels: list[str]  # the channels the operation sends by (none configured: no notices)
