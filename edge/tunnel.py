"""A local TLS tunnel through which the agent uses a key kept on a token.

Python's ssl module loads private keys from files only, so a kiosk whose key
lives on a PKCS#11 token (a TPM through tpm2-pkcs11, or an HSM) cannot do
mutual TLS itself. :class:`TlsTunnel` runs ``stunnel`` with OpenSSL's pkcs11
engine (libp11) as a child process: for every remote endpoint it listens on
a free port of 127.0.0.1, and each connection made there in plain text
leaves for the endpoint over TLS, signed on the token, with the server's
chain and name checked against the kiosk CA.

The configuration lives in a private directory (0700) for as long as the
tunnel runs. The PIN is handed to the engine in a separate 0600 file named
by the key's URI, so it is neither in the configuration nor in stunnel's
output (which is forwarded to this module's logger at debug level).
stunnel is restarted when it dies, and told to read its certificate again
(SIGHUP) after a renewal.

The local ports are plain text on the loopback interface: any program on
the kiosk may connect through them with the kiosk's identity, as it could
ask the token to sign while the agent is logged in. The kiosk runs no
untrusted local users; this is the trade made for keeping the key on the
token.
"""

from __future__ import annotations

import atexit
import collections
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple
from urllib.parse import quote, urlsplit

from edge.config import AgentConfig
from edge.errors import TunnelError

logger = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"
INSTALL_HINT = (
    "install stunnel4 and libengine-pkcs11-openssl "
    "(apt-get install stunnel4 libengine-pkcs11-openssl)"
)
CONFIGURED = "Configuration successful"
CONFIG_FAILED = "Configuration failed"
RESTART_MAX_S = 60.0
RELOAD_SETTLE_S = 0.3


@dataclass(frozen=True)
class TokenKey:
    """Where the kiosk's private key is: module, token, key label and PIN."""

    module: Path
    token_label: str
    key_label: str
    pin: str = field(repr=False)
    environment: Mapping[str, str] = field(default_factory=dict)


class Endpoint(NamedTuple):
    """A remote TLS service the tunnel reaches (host name or IP, port)."""

    host: str
    port: int


class LocalAddress(NamedTuple):
    """Where a tunnelled endpoint is reached in plain text on this machine."""

    host: str
    port: int


class TlsTunnel:
    """Run stunnel with the token key; one local port per remote endpoint."""

    def __init__(
        self,
        token: TokenKey,
        certificate: Path,
        ca: Path,
        endpoints: Sequence[tuple[str, int]] = (),
        *,
        command: str = "stunnel",
        engine: str = "pkcs11",
        start_timeout_s: float = 15.0,
        restart_delay_s: float = 1.0,
    ) -> None:
        self.token = token
        self.certificate = certificate
        self.ca = ca
        self.command = command
        self.engine = engine
        self.start_timeout_s = start_timeout_s
        self.restart_delay_s = restart_delay_s
        self.restarts = 0
        self._routes: dict[Endpoint, LocalAddress] = {}
        self._lock = threading.RLock()
        self._configured = threading.Condition(self._lock)
        self._configurations = 0
        self._failures = 0
        self._pin_refused = False
        self._output: collections.deque[str] = collections.deque(maxlen=60)
        self._process: subprocess.Popen[bytes] | None = None
        self._directory: Path | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        for endpoint in endpoints:
            self.route(*endpoint)

    def __repr__(self) -> str:
        return f"TlsTunnel({sorted(self._routes)})"

    @property
    def pid(self) -> int | None:
        """The running stunnel's process id, or None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def directory(self) -> Path | None:
        """The private directory of the configuration while the tunnel runs."""
        return self._directory

    def route(self, host: str, port: int) -> LocalAddress:
        """Return the local address for ``host:port``, adding it before start."""
        endpoint = Endpoint(host, port)
        with self._lock:
            local = self._routes.get(endpoint)
            if local is not None:
                return local
            if self._process is not None:
                raise TunnelError(
                    f"{host}:{port} was not routed through the tunnel before it started"
                )
            _check_value(host)
            local = LocalAddress(LOCAL_HOST, _free_port())
            self._routes[endpoint] = local
            logger.debug("%s:%s is reached through %s:%s", host, port, *local)
            return local

    def local_address(self, host: str, port: int) -> LocalAddress:
        """Return the local address of an endpoint routed already."""
        try:
            return self._routes[Endpoint(host, port)]
        except KeyError:
            raise TunnelError(
                f"{host}:{port} is not routed through the tunnel"
            ) from None

    def start(self) -> None:
        """Write the configuration, start stunnel and wait until it listens.

        Raises:
            TunnelError: stunnel or the engine is missing, the token refused
                the PIN or has no such key, or a local port did not open.
        """
        executable = shutil.which(self.command)
        if executable is None:
            raise TunnelError(
                f"{self.command} was not found: the kiosk key is on a token and "
                f"its TLS connections need stunnel; {INSTALL_HINT}"
            )
        if not self._routes:
            raise TunnelError("the tunnel has no endpoint to reach")
        with self._lock:
            self._stop.clear()
            self._directory = Path(tempfile.mkdtemp(prefix="kiosk-tunnel-"))
            config = self._write_files(self._directory)
        try:
            self._launch([executable, str(config)])
        except TunnelError:
            with self._lock:
                self._remove_files()
            raise
        self._watcher = threading.Thread(
            target=self._watch, name="tls-tunnel", daemon=True
        )
        self._watcher.start()
        # An agent that exits without stopping must not leave stunnel behind.
        atexit.register(self.stop)
        logger.info(
            "TLS tunnel with the token key %s runs for %s",
            self.token.key_label,
            ", ".join(f"{host}:{port}" for host, port in self._routes),
        )

    def reload_certificate(self) -> None:
        """Make stunnel read its certificate again (after a renewal)."""
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                logger.warning("the TLS tunnel is not running; nothing to reload")
                return
            seen = self._configurations + self._failures
            process.send_signal(signal.SIGHUP)
            reloaded = self._configured.wait_for(
                lambda: self._configurations + self._failures > seen,
                timeout=self.start_timeout_s,
            )
            loaded = reloaded and self._last_was_success()
        if not loaded:
            raise TunnelError(
                "stunnel did not load the renewed certificate: "
                f"{self._explain(None)}; it keeps the previous one"
            )
        # stunnel binds its listening sockets again after reading the file.
        time.sleep(RELOAD_SETTLE_S)
        self._wait_listening(process, None)
        logger.info("the TLS tunnel loaded the renewed certificate")

    def stop(self) -> None:
        """Stop stunnel and remove its configuration."""
        atexit.unregister(self.stop)
        self._stop.set()
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            _end(process)
        if self._watcher is not None:
            self._watcher.join(timeout=self.start_timeout_s + 5)
            self._watcher = None
        with self._lock:
            # a restart that raced with this stop
            process, self._process = self._process, None
            self._remove_files()
        if process is not None:
            _end(process)

    def _write_files(self, directory: Path) -> Path:
        pin_file = directory / "pin"
        _write_private(pin_file, self.token.pin)
        config = directory / "stunnel.conf"
        _write_private(config, self._config_text(pin_file))
        return config

    def _config_text(self, pin_file: Path) -> str:
        _check_value(str(self.token.module), str(self.certificate), str(self.ca))
        key_uri = (
            f"pkcs11:token={_uri(self.token.token_label)};"
            f"object={_uri(self.token.key_label)};type=private;"
            f"pin-source=file:{_uri(str(pin_file))}"
        )
        lines = [
            "; Written by the kiosk agent for its TLS tunnel; removed when it stops.",
            "foreground = yes",
            "pid =",
            "debug = notice",
            f"engine = {self.engine}",
            f"engineCtrl = MODULE_PATH:{self.token.module}",
        ]
        for index, ((host, port), local) in enumerate(sorted(self._routes.items())):
            lines += [
                "",
                f"[endpoint-{index}]",
                "client = yes",
                f"accept = {local.host}:{local.port}",
                # stunnel splits at the last colon, so IPv6 needs no brackets
                f"connect = {host}:{port}",
                f"engineId = {self.engine}",
                f"key = {key_uri}",
                f"cert = {self.certificate}",
                f"CAfile = {self.ca}",
                "verifyChain = yes",
                *_name_check(host),
            ]
        return "\n".join(lines) + "\n"

    def _launch(self, argv: list[str]) -> None:
        """Start stunnel and wait for its ports; clean up if it does not come up."""
        with self._lock:
            self._output.clear()
            self._configurations = self._failures = 0
            environment = {**os.environ, **self.token.environment}
            try:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=environment,
                )
            except OSError as exc:
                raise TunnelError(
                    f"cannot run {argv[0]}: {exc}; {INSTALL_HINT}"
                ) from exc
            assert process.stdout is not None  # set by stdout=PIPE
            self._process = process
        reader = threading.Thread(
            target=self._read_output,
            args=(process.stdout,),
            name="tls-tunnel-output",
            daemon=True,
        )
        reader.start()
        try:
            self._wait_listening(process, reader)
        except TunnelError:
            with self._lock:
                self._process = None
            _end(process)
            raise

    def _wait_listening(
        self, process: subprocess.Popen[bytes], reader: threading.Thread | None
    ) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        waiting = list(self._routes.values())
        while waiting:
            code = process.poll()
            if code is not None:
                if reader is not None:
                    reader.join(timeout=5)  # stunnel's last lines say why
                raise TunnelError(self._explain(code))
            if time.monotonic() > deadline:
                raise TunnelError(
                    f"stunnel did not open {', '.join(map(str, waiting))} within "
                    f"{self.start_timeout_s:.0f} s: {self._explain(None)}"
                )
            if _accepts(waiting[0]):
                waiting.pop(0)
            else:
                time.sleep(0.05)

    def _read_output(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = self._mask(raw.decode("utf-8", "replace").rstrip())
            logger.debug("stunnel: %s", line)
            with self._lock:
                self._output.append(line)
                if CONFIGURED in line:
                    self._configurations += 1
                    self._configured.notify_all()
                elif CONFIG_FAILED in line:
                    self._failures += 1
                    self._configured.notify_all()
        stream.close()

    def _last_was_success(self) -> bool:
        for line in reversed(self._output):
            if CONFIGURED in line:
                return True
            if CONFIG_FAILED in line:
                return False
        return False

    def _explain(self, code: int | None) -> str:
        """Say in plain words why stunnel failed, from what it printed."""
        with self._lock:
            lines = list(self._output)
        output = "\n".join(lines)
        if "Failed to open the engine" in output or "no such engine" in output:
            return f"stunnel cannot load OpenSSL's {self.engine} engine; {INSTALL_HINT}"
        if "PIN incorrect" in output or "PIN_INCORRECT" in output:
            self._pin_refused = True
            return (
                f"the token {self.token.token_label!r} refused the PIN; check "
                "services.key.pkcs11_pin"
            )
        if "PIN locked" in output or "PIN_LOCKED" in output:
            return f"the token {self.token.token_label!r} has locked its user PIN"
        if "private key was not found" in output or "failed loading private" in output:
            return (
                f"the key {self.token.key_label!r} was not found on the token "
                f"{self.token.token_label!r} (or the token is absent); check the "
                "labels and services.key.pkcs11_module"
            )
        if "Address already in use" in output:
            return "a local port of the tunnel was taken by another program"
        errors = [line for line in lines if "LOG3" in line or "[!]" in line]
        detail = "; ".join(errors[-4:]) or "no output"
        exit_text = (
            f"stunnel exited with code {code}" if code is not None else "stunnel"
        )
        return f"{exit_text}: {detail}"

    def _mask(self, text: str) -> str:
        pin = self.token.pin
        return text.replace(pin, "***") if pin else text

    def _watch(self) -> None:
        """Restart stunnel whenever it dies, until the tunnel is stopped."""
        delay = self.restart_delay_s
        while not self._stop.is_set():
            process = self._process
            if process is None:
                if self._stop.wait(delay):
                    return
            else:
                code = process.wait()
                if self._stop.is_set():
                    return
                logger.warning(
                    "stunnel exited with code %s; restarting it in %.0f s", code, delay
                )
                if self._stop.wait(delay):
                    return
            directory = self._directory
            if directory is None:
                return
            try:
                self._launch([self._executable(), str(directory / "stunnel.conf")])
            except TunnelError as exc:
                if self._pin_refused:
                    # Each wrong PIN counts towards locking the token.
                    logger.error("the TLS tunnel stays down: %s", exc)
                    return
                delay = min(RESTART_MAX_S, delay * 2)
                logger.error("the TLS tunnel could not restart: %s", exc)
                continue
            self.restarts += 1
            delay = self.restart_delay_s
            logger.info("the TLS tunnel runs again")

    def _executable(self) -> str:
        return shutil.which(self.command) or self.command

    def _remove_files(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


def tunnel_for(config: AgentConfig) -> TlsTunnel | None:
    """Return the agent's TLS tunnel when its key is on a token, else None.

    The office's broker and HTTPS endpoint are routed; the telemetry broker
    is added by :func:`edge.services.build_services`.
    """
    key = config.services.key
    office = config.office
    if key.key_backend != "pkcs11":
        return None
    if office.cert_file is None or office.ca_file is None or key.pkcs11_pin is None:
        raise TunnelError("the token key needs office.cert_file, ca_file and a PIN")
    tunnel = TlsTunnel(
        TokenKey(
            key.pkcs11_module,
            key.pkcs11_token_label,
            key.key_label,
            key.pkcs11_pin.get_secret_value(),
            dict(key.pkcs11_environment or {}),
        ),
        office.cert_file,
        office.ca_file,
        command=key.stunnel_command,
    )
    tunnel.route(office.mqtt_host, office.mqtt_port)
    https = https_endpoint(office.https_url)
    if https is not None:
        tunnel.route(*https)
    return tunnel


def https_endpoint(url: str) -> Endpoint | None:
    """Return the host and port of an ``https://`` address (None for http)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname is None:
        return None
    return Endpoint(parts.hostname, parts.port or 443)


def _name_check(host: str) -> list[str]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return [f"checkHost = {host}", f"sni = {host}"]
    return [f"checkIP = {host}"]


def _uri(value: str) -> str:
    return quote(value, safe="/")


def _check_value(*values: str) -> None:
    for value in values:
        if any(char in value for char in "\r\n\0"):
            raise TunnelError(f"{value!r} cannot be written into stunnel's settings")


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCAL_HOST, 0))
        return int(probe.getsockname()[1])


def _accepts(address: LocalAddress) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
