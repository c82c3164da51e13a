"""The kiosk's telemetry outbox: order, bound, thinning, events kept."""

from __future__ import annotations

from pathlib import Path

from edge.telemetry.outbox import EVENT, TELEMETRY, Outbox


def test_messages_come_back_in_order_and_go_when_deleted(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    seqs = [outbox.put(EVENT, "kiosk/k-1/events", f"{n}".encode()) for n in range(5)]
    pending = outbox.pending()
    assert [p.payload for p in pending] == [b"0", b"1", b"2", b"3", b"4"]
    outbox.delete(seqs[0])
    assert [p.seq for p in outbox.pending(after=seqs[1])] == seqs[2:]
    assert outbox.depth() == 4


def test_bound_thins_old_telemetry_and_keeps_every_event(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_rows=100)
    for n in range(300):
        outbox.put(TELEMETRY, "t", f"h{n}".encode())
        if n % 10 == 0:
            outbox.put(EVENT, "e", f"e{n}".encode())

    assert outbox.depth() <= 100
    assert outbox.count(EVENT) == 30
    payloads = [p.payload for p in outbox.pending(limit=1000)]
    assert payloads[-1] == b"h299", "the newest health report is kept"
    order = [p.seq for p in outbox.pending(limit=1000)]
    assert order == sorted(order)


def test_events_alone_may_exceed_the_bound(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_rows=10)
    for n in range(25):
        outbox.put(EVENT, "e", f"{n}".encode())
    assert outbox.count(EVENT) == 25


def test_outbox_survives_a_restart(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "outbox.db")
    first.put(EVENT, "e", b"kept")
    first.close()
    again = Outbox(tmp_path / "outbox.db")
    assert [p.payload for p in again.pending()] == [b"kept"]


def test_commands_are_remembered_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    assert outbox.remember_command("a" * 32)
    assert not outbox.remember_command("a" * 32)
