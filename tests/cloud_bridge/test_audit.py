"""The audit log's hash chain: appended rows verify, an edited row is named."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from cloud_bridge.audit import record, verify_chain
from cloud_bridge.commands.audit import verify_command
from cloud_bridge.config import BridgeConfig
from cloud_bridge.console.viewing import ViewRecorder
from cloud_bridge.store import CopyStore


def _store(url: str) -> CopyStore:
    store = CopyStore(url)
    store.migrate()
    return store


def _fill(store: CopyStore, rows: int) -> None:
    for number in range(rows):
        record(store.engine, "officer1", "request.view", f"req-{number}", {"n": number})


def test_untouched_chain_verifies(tmp_path: Path) -> None:
    store = _store(f"sqlite:///{tmp_path / 'a.db'}")
    _fill(store, 5)

    report = verify_chain(store.engine)

    assert report.ok
    assert report.rows == 5
    store.close()


def test_edited_row_is_named(tmp_path: Path) -> None:
    store = _store(f"sqlite:///{tmp_path / 'a.db'}")
    _fill(store, 5)
    with store.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
        )

    report = verify_chain(store.engine)

    assert not report.ok
    assert report.broken_seq == 3
    assert "edited" in (report.problem or "")
    store.close()


def test_deleted_row_is_named(tmp_path: Path) -> None:
    store = _store(f"sqlite:///{tmp_path / 'a.db'}")
    _fill(store, 4)
    with store.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_log WHERE seq = 2"))

    report = verify_chain(store.engine)

    assert report.broken_seq == 3


def test_chain_on_postgresql(postgres_url: str) -> None:
    store = _store(postgres_url)
    _fill(store, 3)
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_log SET detail = '{}' WHERE seq = 2"))

    report = verify_chain(store.engine)

    assert report.broken_seq == 2
    store.close()


def test_verify_command_reports_the_broken_row(
    bridge_config: BridgeConfig,
) -> None:
    url = bridge_config.database_url()
    Path(bridge_config.data_dir).mkdir(parents=True, exist_ok=True)
    store = _store(url)
    _fill(store, 3)
    env = {"KIOSK_BRIDGE__DATABASE__URL": url}

    intact = CliRunner().invoke(verify_command, [], env=env)
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_log SET subject = 'x' WHERE seq = 1"))
    broken = CliRunner().invoke(verify_command, [], env=env)
    store.close()

    assert intact.exit_code == 0, intact.output
    assert "3 rows" in intact.output
    assert broken.exit_code != 0
    assert "row 1" in broken.output


def test_list_views_are_chained_and_verified_by_the_command(
    bridge_config: BridgeConfig,
) -> None:
    url = bridge_config.database_url()
    Path(bridge_config.data_dir).mkdir(parents=True, exist_ok=True)
    store = _store(url)
    views = ViewRecorder(store.engine)
    env = {"KIOSK_BRIDGE__DATABASE__URL": url}

    recorded = [
        views.list_shown("s1", "officer1", "queue.view", ["r1", "r2"]),
        views.list_shown("s1", "officer1", "queue.view", ["r1", "r2"]),
        views.list_shown("s1", "officer1", "queue.view", ["r2"]),
        views.list_shown("s2", "officer2", "queue.view", ["r2"]),
    ]
    intact = CliRunner().invoke(verify_command, [], env=env)
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_log SET detail = '{}' WHERE seq = 2"))
    edited = CliRunner().invoke(verify_command, [], env=env)
    store.close()

    assert recorded == [True, False, True, True]
    assert intact.exit_code == 0, intact.output
    assert "3 rows" in intact.output
    assert edited.exit_code != 0
    assert "row 2" in edited.output
