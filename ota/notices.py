"""Bridge side of update messages: notices out to kiosks, reports in from them.

After ``kiosk ota publish`` the bridge tells every kiosk the release assigns
(a named list, or the current cohort of the enrolled fleet) on
``office/<id>/updates``, at QoS 1 through its own client certificate. A
kiosk that is offline then learns of the release by its periodic check, so
a lost notice delays an update but never loses it.

Install reports travel as kiosk events on ``kiosk/<id>/events``; the fleet
consumer hands each payload of that schema to :func:`record_update_report`,
which records it with the director so the rollout advances or halts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from cloud_bridge.fleet.mqtt_client import BrokerAddress, make_client
from ota.config import OtaRepositorySection
from ota.director import Director, Release, ingest_report
from ota.errors import OtaError, RolloutError
from protocol.topics import EVENTS, TopicError, split_kiosk_topic
from protocol.updates import InstallReport, UpdateNotice, notice_topic

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
PUBLISH_TIMEOUT_S = 10.0


def release_kiosks(release: Release, fleet: Iterable[str]) -> list[str]:
    """Return the kiosks a notice goes to: the named list, or the fleet."""
    if release.kiosks is not None:
        return sorted(set(release.kiosks))
    return sorted(set(fleet))


def publish_notices(client: mqtt.Client, notices: Sequence[UpdateNotice]) -> int:
    """Publish each notice at QoS 1 and wait for the broker; return how many."""
    sent = 0
    for notice in notices:
        info = client.publish(notice_topic(notice.kiosk_id), notice.to_bytes(), qos=1)
        try:
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:
            raise RolloutError(
                f"the broker did not take the notice for {notice.kiosk_id}: {exc}"
            ) from exc
        if info.is_published():
            sent += 1
    return sent


def notify_release(
    address: BrokerAddress,
    director: Director,
    release: Release,
    fleet: Iterable[str],
) -> int:
    """Connect as the bridge and notify the kiosks ``release`` assigns.

    Returns how many notices the broker accepted.

    Raises:
        RolloutError: the broker cannot be reached or refuses the bridge.
    """
    notices = director.notices(release, release_kiosks(release, fleet))
    if not notices:
        return 0
    client = _connect(address)
    try:
        sent = publish_notices(client, notices)
    finally:
        client.disconnect()
        client.loop_stop()
    logger.info("notified %s kiosks of %s", sent, release.target)
    return sent


class AnnouncingDirector(Director):
    """A director that notifies the kiosks each new rollout stage takes in.

    Reports arrive in the fleet consumer; when one widens a release's cohort,
    the kiosks that the wider cohort adds are sent notices at once instead
    of waiting for their periodic check.
    """

    def __init__(
        self,
        engine: Engine,
        settings: OtaRepositorySection,
        address: BrokerAddress,
        fleet: Callable[[], Iterable[str]],
    ) -> None:
        super().__init__(engine, settings)
        self.address = address
        self.fleet = fleet

    def record_report(self, report: InstallReport) -> Release | None:
        """Record the report; announce the release to a newly widened cohort."""
        before = self._release_of(report.target)
        release = super().record_report(report)
        if (
            before is None
            or release is None
            or release.state != "rolling"
            or release.kiosks is not None
            or release.stage_index <= before.stage_index
        ):
            return release
        newcomers = [
            kiosk_id
            for kiosk_id in self.fleet()
            if not before.assigns(kiosk_id) and release.assigns(kiosk_id)
        ]
        try:
            notify_release(self.address, self, release, newcomers)
        except RolloutError as exc:
            logger.warning(
                "could not announce the next stage of %s: %s", release.target, exc
            )
        return release

    def _release_of(self, target: str) -> Release | None:
        for release in self.releases():
            if release.target == target:
                return release
        return None


def record_update_report(director: Director, topic: str, payload: bytes) -> bool:
    """Record ``payload`` if it is an install report on a kiosk's events topic.

    Returns False for anything else, so the caller handles it as before;
    True once the payload was taken as a report (recorded, or dropped as
    invalid or spoofed by :func:`ingest_report`, which logs why).
    """
    try:
        kiosk_id, leaf = split_kiosk_topic(topic)
    except TopicError:
        return False
    if leaf != EVENTS or _schema(payload) != InstallReport.SCHEMA:
        return False
    try:
        ingest_report(director, kiosk_id, payload)
    except (OtaError, SQLAlchemyError):
        logger.exception("could not record an install report from %s", kiosk_id)
    return True


def _schema(payload: bytes) -> str | None:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    name = data.get("schema_name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _connect(address: BrokerAddress) -> mqtt.Client:
    try:
        client = make_client(address)
    except OSError as exc:
        raise RolloutError(
            f"cannot load the bridge's broker certificate: {exc}; run 'kiosk "
            "bridge broker-config' (kiosks will find the release at their next "
            "check)"
        ) from exc
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(
        _client: mqtt.Client,
        _userdata: object,
        _flags: object,
        code: ReasonCode,
        _properties: object,
    ) -> None:
        if code.is_failure:
            refused.append(str(code))
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive=30)
    except OSError as exc:
        raise RolloutError(
            f"cannot reach the broker at {address.host}:{address.port} to notify "
            f"kiosks: {exc}; they will find the release at their next check"
        ) from exc
    client.loop_start()
    if not connected.wait(CONNECT_TIMEOUT_S) or refused:
        client.loop_stop()
        reason = ", ".join(refused) or "no answer"
        raise RolloutError(
            f"the broker did not accept the bridge ({reason}); kiosks will find "
            "the release at their next check"
        )
    return client
