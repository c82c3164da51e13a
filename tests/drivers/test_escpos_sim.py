"""The simulated ESC/POS printer answers status requests as a printer does."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from drivers.escpos_sim import EscposSimulator, Paper


@pytest.fixture
def simulator() -> Iterator[EscposSimulator]:
    sim = EscposSimulator()
    sim.start()
    yield sim
    sim.stop()


def ask(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(request)
        return conn.recv(1)[0]


@pytest.mark.parametrize(
    ("paper", "dle_eot_4", "gs_r_1", "dle_eot_1"),
    [
        (Paper.OK, 0x12, 0x00, 0x16),
        (Paper.NEAR_END, 0x1E, 0x03, 0x16),
        (Paper.OUT, 0x7E, 0x0F, 0x1E),
    ],
)
def test_status_bytes_follow_the_paper(
    simulator: EscposSimulator,
    paper: Paper,
    dle_eot_4: int,
    gs_r_1: int,
    dle_eot_1: int,
) -> None:
    simulator.paper = paper
    assert ask(simulator.port, b"\x10\x04\x04") == dle_eot_4
    assert ask(simulator.port, b"\x1dr\x01") == gs_r_1
    assert ask(simulator.port, b"\x10\x04\x01") == dle_eot_1


def test_cover_open_sets_the_offline_cause_bit(simulator: EscposSimulator) -> None:
    simulator.cover_open = True
    assert ask(simulator.port, b"\x10\x04\x02") & 0x04


def test_commands_split_across_packets_are_decoded(simulator: EscposSimulator) -> None:
    stream = b"\x1b@\x1ba\x01HELLO\n\x1d(k\x08\x001P0abcde\x1d(k\x03\x001Q0\x1dVA\x03"
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=2) as conn:
        for start in range(0, len(stream), 3):
            conn.sendall(stream[start : start + 3])
        receipt = simulator.wait_receipt(1)
    assert receipt.lines == ["HELLO"]
    assert receipt.qr_codes == ["abcde"]
    assert receipt.cut
