"""Settings: one object, read from the environment (prefix ``RELIEFLINK_``) and ``.env``.

Never read at import time: call :func:`get_settings`, which caches the object.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me"


class Settings(BaseSettings):
    """Everything RelieFlink can be configured with. `.env.example` documents each key."""

    model_config = SettingsConfigDict(env_prefix="RELIEFLINK_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'relieflink.db'}")
    secret_key: str = PLACEHOLDER_SECRET
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    session_idle_minutes: int = Field(default=60, gt=0)
    session_absolute_hours: int = Field(default=12, gt=0)
    login_attempts_per_minute: int = Field(default=5, gt=0)
    sql_echo: bool = False
    # Request bodies larger than these are refused (413) while they arrive: file uploads
    # (multipart forms) and everything else (JSON, forms).
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    timezone: str = "Asia/Shanghai"
    ration_policy: Path | None = None
    # Imports read, check and write this many rows at a time (memory stays flat with file size).
    import_chunk_rows: int = Field(default=20_000, gt=0)
    jobs_max_running: int = Field(default=4, gt=0)
    jobs_max_queued_per_user: int = Field(default=20, gt=0)
    jobs_max_queued: int = Field(default=200, gt=0)  # queued or running, everyone's together
    jobs_lease_seconds: int = Field(default=120, ge=10)
    jobs_poll_seconds: float = Field(default=2.0, gt=0)
    jobs_in_process: bool | None = None
    # Notices to residents: a channel is on when it is configured (the SMS gateway's URL, an
    # SMTP host). Each notice is tried at most notices_max_attempts times, with a doubling delay.
    sms_gateway_url: str | None = None
    sms_gateway_secret: str = ""
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_sender: str = "relieflink@localhost"
    notices_max_attempts: int = Field(default=5, gt=0)
    notices_retry_seconds: int = Field(default=60, gt=0)
    notices_per_recipient_per_hour: int = Field(default=6, gt=0)
    notices_batch: int = Field(default=100, gt=0)
    notices_lease_seconds: int = Field(default=60, gt=0)  # a sender's hold on a notice it sends
    notices_templates: Path | None = None  # the built-in notices/templates.yaml by default
    # Webhooks: tries per event before the dead-letter list; the first retry's delay (doubling).
    webhook_max_attempts: int = Field(default=8, gt=0)
    webhook_retry_seconds: float = Field(default=30.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Several server processes share consultation chat through Redis pub/sub (redis://host:6379/0).
    redis_url: str | None = None
    redis_prefix: str = "relieflink"  # channel names start with it: deployments may share a Redis
    # Addresses of the TLS proxy whose X-Forwarded-Proto/-For `relieflink serve` believes.
    forwarded_allow_ips: str = "127.0.0.1"
    # Hours of the day (local) at which allocation runs and dispatch is planned: "6,12,17".
    # The default lies inside the carriers' shifts (the scenario's fleet: trucks and robots from
    # 06:00, vans 07:00-19:00, trucks until 18:00, e-bikes 08:00-20:00): a wave planned when no
    # vehicle is on shift sends nothing (a plan uses no shift time before its hour), so the
    # former 20:00 wave had only robots and its requests waited for the next morning anyway,
    # and a 09:00 first wave left the trucks' first three hours idle. The first at the earliest
    # shift start (the night's requests leave after an hour's loading), the last an hour before
    # the first shift ends (a van or e-bike still makes a trip); vehicles back early take more
    # trips between the waves (the simulation's trip waves).
    dispatch_waves: Annotated[tuple[int, ...], NoDecode] = (6, 12, 17)

    @field_validator("dispatch_waves", mode="before")
    @classmethod
    def _split_waves(cls, value: object) -> object:
        """The environment gives "9,15,20": whole hours, comma-separated."""
        if not isinstance(value, str):
            return value
        hours = []
        for part in value.split(","):
            if not part.strip().isdigit():
                raise ValueError(
                    f"RELIEFLINK_DISPATCH_WAVES={value!r}: {part.strip()!r} is not a whole hour; "
                    "give hours of the day separated by commas, e.g. 9,15,20"
                )
            hours.append(int(part))
        return tuple(hours)

    @field_validator("dispatch_waves")
    @classmethod
    def _check_waves(cls, hours: tuple[int, ...]) -> tuple[int, ...]:
        if not hours:
            raise ValueError("RELIEFLINK_DISPATCH_WAVES: give at least one hour, e.g. 9,15,20")
        wrong = [h for h in hours if not 0 <= h <= 23]
        if wrong:
            raise ValueError(
                f"RELIEFLINK_DISPATCH_WAVES: {', '.join(map(str, wrong))} is not an hour of the "
                "day (0-23)"
            )
        if list(hours) != sorted(set(hours)):
            raise ValueError(
                "RELIEFLINK_DISPATCH_WAVES: give each hour once, in increasing order, e.g. 9,15,20"
            )
        return hours

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key == PLACEHOLDER_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "RELIEFLINK_SECRET_KEY is a placeholder or shorter than 32 characters; set a "
                "random one: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def runs_jobs_in_process(self) -> bool:
        """Whether the server runs its jobs itself: as set, else on the embedded SQLite default
        and in tests (a test needs no worker process); PostgreSQL runs `relieflink worker`."""
        if self.jobs_in_process is not None:
            return self.jobs_in_process
        return self.is_sqlite or self.environment == "test"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
