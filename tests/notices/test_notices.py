"""Notices to residents: written with the event that causes them (a rolled-back event sends
nothing, a replayed one nothing twice), sent by the job runner over a real HTTP gateway with a
signed body, retried with a growing delay into the dead letters, capped per phone and hour,
in the household's language, never for a household that opted out, and no phone in any log."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink import clock
from relieflink.cli import app
from relieflink.dispatch import codes
from relieflink.jobs import runner
from relieflink.models import (
    Household,
    Job,
    JobStatus,
    Notice,
    NoticeStatus,
    Parcel,
    RequestSource,
)
from relieflink.needs import service as needs
from relieflink.notices import sender, templates
from relieflink.notices import service as notices
from tests.dispatch.factories import TODAY, make_city
from tests.dispatch.test_batch import delivered, eid, scene
from tests.notices.conftest import Gateway

__all__ = ["scene"]  # the loaded route of the batch tests, as a fixture here too

BATCH = "/api/v1/dispatch/events:batch"
BUILT_IN = Path(templates.__file__).with_name("templates.yaml")


def rows(db: Session, **where: Any) -> list[Notice]:
    db.rollback()
    stmt = select(Notice).order_by(Notice.id)
    for name, value in where.items():
        stmt = stmt.where(getattr(Notice, name) == value)
    return list(db.scalars(stmt))


# --- templates -----------------------------------------------------------------------------


def test_the_built_in_templates_pass_the_check() -> None:
    result = CliRunner().invoke(app, ["notify", "check"])
    assert result.exit_code == 0, result.output
    assert "7 events × 2 languages" in result.output


def test_check_refuses_a_template_that_drops_or_invents_a_placeholder(tmp_path: Path) -> None:
    text = BUILT_IN.read_text("utf-8")
    text = text.replace("取件码 {code}", "取件码")  # the Chinese pickup notice drops the code
    text = text.replace("Parcel {parcel} was delivered.", "Parcel {parcle} was delivered.")
    broken = tmp_path / "templates.yaml"
    broken.write_text(text, "utf-8")
    result = CliRunner().invoke(app, ["notify", "check", str(broken)])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "on_the_way" in out and "zh" in out and "drops {code}" in out
    assert "delivered" in out and "{parcle}" in out and "does not give" in out


def test_check_names_the_line_of_broken_yaml(tmp_path: Path) -> None:
    broken = tmp_path / "templates.yaml"
    broken.write_text("delivered:\n  zh: [unclosed\n", "utf-8")
    result = CliRunner().invoke(app, ["notify", "check", str(broken)])
    assert result.exit_code == 1 and "line 3" in " ".join(result.output.split())


# --- the outbox ------------------------------------------------------------------------------


def test_with_no_channel_configured_nothing_is_written(db: Session) -> None:
    make_city(db)
    assert rows(db) == []
    assert runner.Worker().feed() == 0
    assert db.scalar(select(func.count()).select_from(Job).where(Job.kind == "notices")) == 0


def test_requests_and_allocations_write_one_notice_each_and_wake_the_sender(
    db: Session, gateway: Gateway
) -> None:
    city = make_city(db)
    homes = [h for group in city.homes.values() for h in group]
    received = rows(db, template="request_received")
    assert sorted(n.household_id for n in received) == sorted(h.id for h in homes)
    allocated = rows(db, template="allocated")
    assert {n.household_id for n in allocated} == {h.id for h in homes}
    assert all(n.params["packs"] == 3 for n in allocated)  # 2 bags of rice and 1 bottle of oil
    assert {n.recipient for n in received} == {h.phone for h in homes}
    worker = runner.Worker()
    assert worker.feed() == 1  # a worker sees notices due and queues the sender, once
    assert worker.feed() == 0
    db.rollback()
    queued = db.scalars(select(Job).where(Job.kind == "notices")).all()
    assert [j.status for j in queued] == [JobStatus.queued]
    assert worker.run_one()
    assert {n.status for n in rows(db)} == {NoticeStatus.sent}
    assert worker.feed() == 0  # nothing due any more


def test_a_rolled_back_event_writes_no_notice_and_a_repeat_no_second(
    db: Session, gateway: Gateway
) -> None:
    city = make_city(db)
    home = city.homes["open"][0]
    before = len(rows(db))
    needs.add_requests(
        db,
        [needs.Draft(home.id, [(None, city.rice.id, 2)], RequestSource.committee)],
        actor=None,
        today=TODAY,
    )
    db.rollback()
    assert len(rows(db)) == before
    # The same event twice (a retried batch, a replayed job) is one notice.
    notice = notices.Notice("request:999:received", home.id, "request_received", {"request": 9})
    assert notices.notify(db, [notice]) == 1
    assert notices.notify(db, [notice]) == 0
    db.commit()
    assert len(rows(db, event_key="request:999:received")) == 1


def test_delivery_events_tell_the_household_its_code_then_the_outcome(
    db: Session, client: TestClient, gateway: Gateway, scene: dict[str, Any]
) -> None:
    """(``gateway`` comes before ``scene``: the SMS channel is on when the route is loaded.)"""
    route, headers = scene["route"], scene["courier"]
    parcels = db.scalars(
        select(Parcel).where(Parcel.route_id == route.id).order_by(Parcel.id)
    ).all()
    on_the_way = {n.params["parcel"]: n for n in rows(db, template="on_the_way")}
    assert set(on_the_way) == {p.id for p in parcels}
    for p in parcels:
        assert on_the_way[p.id].params["code"] == codes.derive(p.code_nonce)
        assert on_the_way[p.id].household_id == p.household_id
    p, q = scene["parcels"][:2]
    outcome = [
        delivered(p),
        {"client_event_id": eid(), "kind": "failed", "parcel_id": q.id, "reason": "not_home"},
    ]
    for _ in range(2):  # the phone sends the batch twice: the second is a replay
        assert client.post(BATCH, json={"events": outcome}, headers=headers).status_code == 200
    (done,) = rows(db, template="delivered")
    (failed,) = rows(db, template="failed")
    assert (done.params["parcel"], failed.params["parcel"]) == (p.id, q.id)
    assert failed.params["reason"] == "not home" and failed.params["next_try"]


# --- sending ------------------------------------------------------------------------------------


def _one_notice(db: Session, gateway: Gateway, *, language: str = "zh") -> Household:
    city = make_city(db, per_community=1)
    home = city.homes["open"][0]
    notices.set_preference(db, home.id, language=language)
    db.commit()
    db.execute(Notice.__table__.delete())  # type: ignore[arg-type]
    notices.notify(
        db,
        [
            notices.Notice(
                "parcel:1:on_the_way", home.id, "on_the_way", {"parcel": 1, "code": "123456"}
            )
        ],
    )
    db.commit()
    return home


def test_the_worker_sends_signed_messages_in_the_households_language(
    db: Session, gateway: Gateway
) -> None:
    home = _one_notice(db, gateway, language="en")
    assert runner.Worker().run_one()
    (notice,) = rows(db)
    assert notice.status == NoticeStatus.sent and notice.attempts == 1
    assert gateway.bad_signatures == 0
    (message,) = gateway.delivered.values()
    assert message["to"] == home.phone
    assert message["text"] == templates.render("on_the_way", "en", notice.params)
    assert "123456" in message["text"] and "pickup code" in message["text"]
    assert notice.provider_message_id == message["id"]


def test_failed_sends_back_off_then_go_to_the_dead_letters_and_can_be_resent(
    db: Session, gateway: Gateway
) -> None:
    _one_notice(db, gateway)
    gateway.fail_first = 10
    start = clock.now()
    waits = []
    for attempt in range(1, 4):
        with clock.frozen(start + timedelta(seconds=10 * attempt)):
            report = sender.deliver_due()
            (notice,) = rows(db)
            waits.append((notice.next_try_at - clock.now()).total_seconds())
        assert notice.attempts == attempt
        assert (report.retried, report.dead) == ((1, 0) if attempt < 3 else (0, 1))
    assert waits[:2] == [1, 2]  # doubling from RELIEFLINK_NOTICES_RETRY_SECONDS
    assert notice.status == NoticeStatus.dead and "503" in notice.last_error
    with clock.frozen(start + timedelta(hours=1)):
        assert sender.deliver_due().sent == 0  # the dead stay dead
    listed = CliRunner().invoke(app, ["notify", "list", "--dead"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "parcel:1:on_the_way" in listed.output
    assert notice.recipient not in listed.output  # masked in the list
    assert notice.recipient[-4:] in listed.output
    gateway.fail_first = 0
    assert CliRunner().invoke(app, ["notify", "resend", str(notice.id)]).exit_code == 0
    assert sender.deliver_due().sent == 1
    assert rows(db)[0].status == NoticeStatus.sent
    assert len(gateway.delivered) == 1


def test_a_phone_gets_at_most_the_hourly_cap(
    db: Session, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _one_notice(db, gateway)
    monkeypatch.setenv("RELIEFLINK_NOTICES_PER_RECIPIENT_PER_HOUR", "2")
    from relieflink.config import get_settings

    get_settings.cache_clear()
    notices.notify(
        db,
        [
            notices.Notice(f"parcel:{i}:delivered", home.id, "delivered", {"parcel": i})
            for i in range(2, 6)
        ],
    )
    db.commit()
    report = sender.deliver_due()
    assert (report.sent, report.postponed) == (2, 3)
    waiting = rows(db, status=NoticeStatus.pending)
    assert len(waiting) == 3 and all(n.next_try_at > clock.now() for n in waiting)
    with clock.frozen(clock.now() + timedelta(hours=1, seconds=1)):
        assert sender.deliver_due().sent == 2


def test_a_household_that_opted_out_hears_nothing(db: Session, gateway: Gateway) -> None:
    home = _one_notice(db, gateway)
    notices.set_preference(db, home.id, opted_out=True)
    notices.notify(db, [notices.Notice("parcel:2:delivered", home.id, "delivered", {"parcel": 2})])
    db.commit()
    assert [n.event_key for n in rows(db)] == ["parcel:1:on_the_way"]


def test_no_phone_reaches_the_logs(
    db: Session, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    home = _one_notice(db, gateway)
    gateway.fail_first = 1
    with caplog.at_level(logging.DEBUG):
        sender.deliver_due()
        with clock.frozen(clock.now() + timedelta(minutes=5)):
            sender.deliver_due()
    assert caplog.records  # the failure was logged...
    digits = "".join(c for c in str(home.phone) if c.isdigit())
    logged = "".join(c for c in caplog.text if c.isdigit())
    assert digits not in logged  # ...without the phone
    assert rows(db)[0].status == NoticeStatus.sent
