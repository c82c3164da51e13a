"""Renew the kiosk's certificate on a schedule, well before it ends.

:class:`CertificateRenewer` owns one thread. It wakes when the certificate
enters its renewal window (``before`` its end) or every ``check_s``,
whichever is sooner, renews through the bridge's enrollment endpoint, and
hands the new identity to ``on_renewed`` so the MQTT and HTTPS links load
the new certificate. The old certificate stays valid until it ends, so the
kiosk keeps working while the bridge is unreachable; failed attempts are
retried with exponential backoff and jitter, so a fleet renewing together
does not hammer a bridge that just came back.

With ``open_key`` (a kiosk whose key is on a PKCS#11 token) each renewal
opens the token key, certifies it again and closes it; without, a fresh
file key replaces the old one.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from provisioning.enroll import finish_renewal, renew
from provisioning.errors import ProvisioningError
from provisioning.identity import KioskIdentity, load_identity
from provisioning.keys import KioskKey

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
RenewedHook = Callable[[KioskIdentity], None]
KeyOpener = Callable[[], AbstractContextManager[KioskKey]]


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class CertificateRenewer:
    """Keep the kiosk's certificate renewed from a background thread."""

    def __init__(
        self,
        directory: Path,
        http: httpx.Client,
        *,
        before: timedelta,
        check_s: float = 3600.0,
        retry_min_s: float = 30.0,
        retry_max_s: float = 3600.0,
        on_renewed: RenewedHook | None = None,
        clock: Clock = utc_now,
        open_key: KeyOpener | None = None,
    ) -> None:
        self.directory = directory
        self.http = http
        self.before = before
        self.check_s = check_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.on_renewed = on_renewed or (lambda identity: None)
        self.clock = clock
        self.open_key = open_key
        self.failures = 0
        self.renewals = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Complete an interrupted renewal, then start the renewal thread."""
        try:
            finish_renewal(self.directory)
        except ProvisioningError as exc:
            logger.warning("could not check for an interrupted renewal: %s", exc)
        self._thread = threading.Thread(
            target=self._run, name="certificate-renewal", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (a renewal under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def renew_now(self, announce: bool = True) -> KioskIdentity:
        """Renew at once, whatever the date (the ``renew_certificate`` command).

        With ``announce`` false the caller hands the identity to
        ``on_renewed`` itself, e.g. after answering over the old connection.
        """
        with self._lock:
            identity = self._renew(load_identity(self.directory))
            self.renewals += 1
        if announce:
            self._announce(identity)
        return identity

    def run_once(self) -> float:
        """Renew if due; return the seconds to wait before the next look."""
        try:
            with self._lock:
                identity = load_identity(self.directory)
                if not identity.renewal_due(self.before, self.clock()):
                    self.failures = 0
                    return self._until_due(identity)
                renewed = self._renew(identity)
                self.renewals += 1
        except ProvisioningError as exc:
            self.failures += 1
            delay = self._backoff()
            logger.warning(
                "certificate renewal failed (attempt %s): %s; retrying in %.0f s",
                self.failures,
                exc,
                delay,
            )
            return delay
        self.failures = 0
        logger.info("certificate renewed until %s", renewed.expires_at())
        self._announce(renewed)
        return self._until_due(renewed)

    def _renew(self, identity: KioskIdentity) -> KioskIdentity:
        if self.open_key is None:
            return renew(identity, self.http)
        with self.open_key() as key:
            return renew(identity, self.http, key)

    def _announce(self, identity: KioskIdentity) -> None:
        try:
            self.on_renewed(identity)
        except Exception:
            logger.exception("a link could not load the renewed certificate")

    def _until_due(self, identity: KioskIdentity) -> float:
        due = identity.expires_at() - self.before
        wait = (due - self.clock()).total_seconds()
        return max(1.0, min(self.check_s, wait))

    def _backoff(self) -> float:
        growth = float(2 ** min(self.failures - 1, 30))
        base = min(self.retry_max_s, self.retry_min_s * growth)
        # Full jitter in the upper half: spread kiosks, never retry at once.
        return base / 2 + random.uniform(0, base / 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.run_once()
            except Exception:  # the thread must outlive any one failure
                logger.exception("the certificate renewal check failed")
                delay = self.retry_max_s
            self._stop.wait(delay)
