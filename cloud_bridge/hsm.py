"""Use the office's keys on a PKCS#11 token (SoftHSM2 in development).

:class:`HsmToken` is the only way the bridge touches the token: it generates
the signing and seal keys, stores their certificates, makes raw ECDSA
signatures for the QR seal and hands pyHanko a PKCS#11 signer for PDFs.
:func:`open_token` builds one from the configuration.

Threads and processes. python-pkcs11 initialises a module without locking
callbacks, which tells the module (SoftHSM2 among them) that it will not be
called from two threads at once; SoftHSM2 then turns its own mutexes off.
So every call into a module, from every :class:`HsmToken` of this process,
holds one lock per module, and each token keeps one logged-in session per
process, opened on first use. A process forked from one that used the token
notices the new process id, re-initialises the module and logs in again; the
parent's session is never used from the child. Signing is therefore
serialised within a process (0.5 ms per ECDSA signature on SoftHSM2, median);
run several worker processes to sign in parallel.

python-pkcs11 can re-initialise a module only by finalising it first, so a
forked child calls C_Finalize on the state it inherited. That is harmless for
SoftHSM2, whose state is the process's memory; with a network HSM whose
module keeps a connection open, prefer to use the token only after forking.

Logins are per process in PKCS#11: two :class:`HsmToken` objects for the
same token in one process share one login (a second object with another PIN
is refused all the same), and closing either logs both out; the other logs
in again on its next call.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

import pkcs11
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, CertificateType, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from cloud_bridge.config import BridgeConfig
from cloud_bridge.errors import HsmError

if TYPE_CHECKING:
    from pyhanko.sign.pkcs11 import PKCS11Signer

logger = logging.getLogger(__name__)

T = TypeVar("T")

# pyHanko works with asn1crypto certificates, the rest of the bridge with
# cryptography's; the signer accepts either.
AnyCertificate: TypeAlias = x509.Certificate | asn1_x509.Certificate

EC_CURVE = "secp256r1"
AES_BLOCK = 16
SOFTHSM_UTIL = "softhsm2-util"

# Errors after which the session is worth reopening once (token reinserted,
# network HSM reconnected, module re-initialised under our feet).
_STALE_SESSION = (
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.UserNotLoggedIn,
    p11.ObjectHandleInvalid,
    p11.KeyHandleInvalid,
)


class _Module:
    """A PKCS#11 module loaded in this process, shared by every token object.

    Call :meth:`library` and use what it returns only while holding ``lock``.
    ``generation`` changes whenever the module is (re-)initialised, which
    invalidates every session opened before. ``logins`` maps a token label
    to the SHA-256 of the PIN that logged it in since then: PKCS#11 logins
    are per process, and a token logged in once accepts a second login with
    any PIN, so the right one must be remembered to refuse a wrong one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.generation = 0
        self.logins: dict[str, bytes] = {}
        self._lib: Any = None
        self._state: tuple[int, str | None] | None = None

    def library(self, softhsm_conf: Path | None) -> Any:
        """Return the module, initialised in this process with ``softhsm_conf``."""
        conf = str(softhsm_conf) if softhsm_conf is not None else None
        state = (os.getpid(), conf)
        if self._lib is not None and self._state == state:
            return self._lib
        if conf is not None:
            # SoftHSM2 reads its configuration file in C_Initialize only.
            os.environ["SOFTHSM2_CONF"] = conf
        if self._lib is None:
            self._lib = self._load()
            self._initialised()
        else:
            logger.debug("re-initialising PKCS#11 module %s", self.path)
            self._reinitialize()
        self._state = state
        return self._lib

    def refresh(self, softhsm_conf: Path | None) -> Any:
        """Re-initialise the module so it sees tokens created by other programs."""
        generation = self.generation
        lib = self.library(softhsm_conf)
        if self.generation == generation:  # not freshly initialised just now
            self._reinitialize()
        return lib

    def _initialised(self) -> None:
        # Every earlier session and login is gone.
        self.generation += 1
        self.logins.clear()

    def _load(self) -> Any:
        if not self.path.is_file():
            raise HsmError(
                f"the PKCS#11 module {self.path} does not exist; install softhsm2 "
                "(apt-get install softhsm2) or set hsm.module to your HSM's module"
            )
        try:
            return pkcs11.lib(str(self.path))
        except p11.PKCS11Error as exc:
            raise HsmError(
                f"cannot load the PKCS#11 module {self.path}: {_describe(exc)}; "
                "check hsm.module (and hsm.softhsm_conf for SoftHSM2)"
            ) from exc

    def _reinitialize(self) -> None:
        try:
            self._lib.finalize()
        except p11.PKCS11Error as exc:
            # Normal in a forked child whose module noticed the fork itself.
            logger.debug("C_Finalize of %s: %s", self.path, _describe(exc))
        try:
            self._lib.initialize()
        except p11.PKCS11Error as exc:
            raise HsmError(
                f"cannot initialise the PKCS#11 module {self.path}: {_describe(exc)}"
            ) from exc
        self._initialised()


_modules: dict[Path, _Module] = {}
_modules_lock = threading.Lock()


def _module(path: Path) -> _Module:
    with _modules_lock:
        module = _modules.get(path)
        if module is None:
            module = _modules[path] = _Module(path)
        return module


def _reset_locks_after_fork() -> None:
    # A lock held by another thread at the fork would stay held forever.
    global _modules_lock
    _modules_lock = threading.Lock()
    for module in _modules.values():
        module.lock = threading.RLock()


os.register_at_fork(after_in_child=_reset_locks_after_fork)


class HsmToken:
    """One PKCS#11 token, logged in with the user PIN, safe across threads.

    Keys and certificates are found by their label (``CKA_LABEL``); a key
    pair and its certificate share one ``CKA_ID`` so other PKCS#11 tools pair
    them too. Every method raises :class:`HsmError` with a message that says
    what to do.
    """

    def __init__(
        self,
        module: Path,
        token_label: str,
        pin: str,
        softhsm_conf: Path | None = None,
    ) -> None:
        """Prepare access to ``token_label``; nothing is opened until first use.

        Args:
            module: the vendor's PKCS#11 module (``.so`` file).
            token_label: the token's label.
            pin: the user PIN.
            softhsm_conf: exported as ``SOFTHSM2_CONF`` before the module is
                initialised; None for other modules.
        """
        self.module_path = module
        self.label = token_label
        self.softhsm_conf = softhsm_conf
        self._pin = pin
        self._module = _module(module)
        # (process id, module generation, session) of the open session
        self._session: tuple[int, int, pkcs11.Session] | None = None

    def __repr__(self) -> str:
        return f"HsmToken(module={str(self.module_path)!r}, label={self.label!r})"

    def __enter__(self) -> HsmToken:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check(self) -> None:
        """Open the session now, so a missing token or a wrong PIN shows early."""
        self._run("open a session", lambda session: None)

    def close(self) -> None:
        """Log out and close this process's session, if one is open."""
        with self._module.lock:
            state, self._session = self._session, None
            if state is None or state[:2] != self._current_state():
                return
            session = state[2]
            # Closing a session that logged in logs the process out (the
            # stubs of python-pkcs11 0.9 omit user_type).
            if cast(Any, session).user_type == pkcs11.UserType.USER:
                self._module.logins.pop(self.label, None)
            try:
                session.close()
            except p11.PKCS11Error as exc:
                logger.debug("closing the session on %s: %s", self.label, exc)

    def has_private_key(self, label: str) -> bool:
        """Return whether a private key labelled ``label`` is on the token."""
        return self._run(
            "look up a key",
            lambda s: bool(_objects(s, ObjectClass.PRIVATE_KEY, label)),
        )

    def generate_ec_key(self, label: str) -> ec.EllipticCurvePublicKey:
        """Generate a P-256 key pair on the token and return its public key.

        The private key is sensitive and never extractable: it can sign and
        do nothing else, and it never leaves the token.

        Raises:
            HsmError: a key with this label exists already, or the token
                refused to generate.
        """
        return self._run("generate a key", lambda s: self._generate(s, label))

    def public_key(self, label: str) -> ec.EllipticCurvePublicKey:
        """Return the public half of the key pair labelled ``label``."""
        der = self._run(
            "read a public key",
            lambda s: encode_ec_public_key(self._one(s, ObjectClass.PUBLIC_KEY, label)),
        )
        return _load_ec_public_key(der)

    def store_certificate(self, label: str, cert: x509.Certificate) -> bool:
        """Store ``cert`` on the token as ``label``; return False if already there.

        A different certificate with the same label is replaced. The object
        carries SUBJECT, ISSUER and SERIAL_NUMBER (pyHanko and other tools
        look certificates up by them) and the ID of the key with that label.
        """
        return self._run(
            "store a certificate", lambda s: self._store_certificate(s, label, cert)
        )

    def certificate(self, label: str) -> x509.Certificate:
        """Return the certificate stored on the token as ``label``."""
        value = self._run(
            "read a certificate",
            lambda s: bytes(
                self._one(s, ObjectClass.CERTIFICATE, label)[Attribute.VALUE]
            ),
        )
        return x509.load_der_x509_certificate(value)

    def sign_ecdsa_sha256(self, label: str, data: bytes) -> bytes:
        """Sign ``data`` with ECDSA over SHA-256; return raw r||s (64 bytes).

        This is the signature format of COSE ES256, used for the QR seal.
        """
        digest = hashlib.sha256(data).digest()
        signature = self._run(
            "sign",
            lambda s: self._one(s, ObjectClass.PRIVATE_KEY, label).sign(
                digest, mechanism=Mechanism.ECDSA
            ),
        )
        if len(signature) != 64:
            raise HsmError(
                f"the key {label!r} gave a {len(signature)}-byte ECDSA signature; "
                "the seal needs a P-256 key (64 bytes)"
            )
        return bytes(signature)

    def encrypt(self, label: str, data: bytes) -> bytes:
        """Encrypt ``data`` with the AES key ``label``; return IV and ciphertext.

        The key (AES-256, sensitive, never extractable) is made on the token
        the first time. The mode is CBC with padding, the one AES mode every
        PKCS#11 module offers through ``C_Encrypt``; callers check integrity
        themselves.
        """
        iv = os.urandom(AES_BLOCK)
        encrypted = self._run(
            "encrypt",
            lambda s: self._aes_key(s, label).encrypt(
                data, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=iv
            ),
        )
        return iv + bytes(encrypted)

    def decrypt(self, label: str, blob: bytes) -> bytes:
        """Return what :meth:`encrypt` sealed with the AES key ``label``.

        Raises:
            HsmError: no such key, or the token refused the data.
        """
        if len(blob) < 2 * AES_BLOCK or len(blob) % AES_BLOCK:
            raise HsmError(f"{len(blob)} bytes cannot be an AES-CBC ciphertext")
        iv, encrypted = blob[:AES_BLOCK], blob[AES_BLOCK:]
        return bytes(
            self._run(
                "decrypt",
                lambda s: self._one(s, ObjectClass.SECRET_KEY, label).decrypt(
                    encrypted, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=iv
                ),
            )
        )

    def pdf_signer(
        self,
        key_label: str,
        cert_label: str | None = None,
        chain: Iterable[AnyCertificate] = (),
        signing_cert: AnyCertificate | None = None,
    ) -> PKCS11Signer:
        """Return a pyHanko signer that signs with the token's key ``key_label``.

        Args:
            key_label: the private key's label.
            cert_label: the label of its certificate on the token
                (``key_label`` when None); not read if ``signing_cert`` is given.
            chain: issuer certificates to embed (the root, for the dev PKI).
            signing_cert: the signer's certificate, if the caller has it.

        The signer's token calls hold the module lock, so threads may share
        it; it belongs to the process that created it.
        """
        # pyHanko takes a second to import; only PDF signing needs it.
        from pyhanko.sign.pkcs11 import PKCS11Signer

        if signing_cert is None:
            signing_cert = self.certificate(cert_label or key_label)
        cert = to_asn1(signing_cert)
        # Fail here, not in the middle of signing a PDF, if the key is missing.
        self._run(
            "look up a key", lambda s: self._one(s, ObjectClass.PRIVATE_KEY, key_label)
        )
        return PKCS11Signer(
            # pyHanko only calls get_objects() on the session; ours locks.
            pkcs11_session=cast(pkcs11.Session, _LockedSession(self)),
            key_label=key_label,
            signing_cert=cert,
            ca_chain=[to_asn1(c) for c in chain],
            other_certs_to_pull=(),
            # Tokens (SoftHSM2 among them) lack ECDSA-with-SHA-256: hash here.
            use_raw_mechanism=cert.public_key.algorithm == "ec",
        )

    def _run(self, action: str, operation: Callable[[pkcs11.Session], T]) -> T:
        """Run ``operation`` on this process's session, holding the module lock."""
        with self._module.lock:
            for attempt in (1, 2):
                session = self._open_session()
                try:
                    return operation(session)
                except _STALE_SESSION as exc:
                    self._session = None
                    if attempt == 2:
                        raise HsmError(
                            f"could not {action} on token {self.label!r}: "
                            f"{_describe(exc)}; is the HSM reachable?"
                        ) from exc
                    logger.warning(
                        "session on token %s went stale (%s); reopening",
                        self.label,
                        type(exc).__name__,
                    )
                except p11.PKCS11Error as exc:
                    raise HsmError(
                        f"could not {action} on token {self.label!r}: {_describe(exc)}"
                    ) from exc
        raise AssertionError("unreachable")

    def _current_state(self) -> tuple[int, int]:
        return os.getpid(), self._module.generation

    def _open_session(self) -> pkcs11.Session:
        # Must hold the module lock. library() may re-initialise the module
        # (first use, fork), which changes the generation: compare after it.
        lib = self._module.library(self.softhsm_conf)
        state = self._session
        if state is not None and state[:2] == self._current_state():
            return state[2]
        token = self._find_token(lib)
        session = self._login(token)
        self._session = (*self._current_state(), session)
        logger.debug("opened a session on token %s (pid %d)", self.label, os.getpid())
        return session

    def _find_token(self, lib: Any) -> pkcs11.Token:
        try:
            return cast(pkcs11.Token, lib.get_token(token_label=self.label))
        except p11.NoSuchToken:
            pass
        except p11.PKCS11Error as exc:
            raise HsmError(
                f"cannot list the tokens of {self.module_path}: {_describe(exc)}"
            ) from exc
        # The token may have been created by another program since the
        # module was initialised here; SoftHSM2 only sees it after a reload.
        lib = self._module.refresh(self.softhsm_conf)
        try:
            return cast(pkcs11.Token, lib.get_token(token_label=self.label))
        except p11.NoSuchToken as exc:
            labels = ", ".join(repr(t.label) for t in lib.get_tokens() if t.label)
            raise HsmError(
                f"no token labelled {self.label!r} in {self.module_path} "
                f"(tokens: {labels or 'none'}); run 'kiosk bridge init' or set "
                "hsm.token_label"
            ) from exc
        except p11.MultipleTokensReturned as exc:
            raise HsmError(
                f"several tokens are labelled {self.label!r}; give each a unique label"
            ) from exc

    def _login(self, token: pkcs11.Token) -> pkcs11.Session:
        pin_hash = hashlib.sha256(self._pin.encode("utf-8")).digest()
        logins = self._module.logins
        try:
            session = token.open(rw=True, user_pin=self._pin)
        except p11.UserAlreadyLoggedIn as exc:
            # Another HsmToken of this process logged in, with the right PIN.
            if logins.get(self.label, pin_hash) != pin_hash:
                raise self._pin_refused() from exc
            return token.open(rw=True)
        except p11.PinIncorrect as exc:
            raise self._pin_refused() from exc
        except p11.PinLocked as exc:
            raise HsmError(
                f"the user PIN of token {self.label!r} is locked after too many "
                "wrong tries; an administrator must reset it with the SO PIN"
            ) from exc
        except (p11.PinExpired, p11.UserPinNotInitialized) as exc:
            raise HsmError(
                f"the user PIN of token {self.label!r} is expired or was never "
                "set; set it with the token's administration tool"
            ) from exc
        except p11.PKCS11Error as exc:
            raise HsmError(
                f"cannot open a session on token {self.label!r}: {_describe(exc)}"
            ) from exc
        logins[self.label] = pin_hash
        return session

    def _pin_refused(self) -> HsmError:
        return HsmError(
            f"the HSM refused the PIN for token {self.label!r} (PIN incorrect); "
            "check hsm.pin or the file named by hsm.pin_file. Each wrong try "
            "counts towards locking the PIN"
        )

    def _one(self, session: pkcs11.Session, kind: ObjectClass, label: str) -> Any:
        found = _objects(session, kind, label)
        if len(found) == 1:
            return found[0]
        what = _KIND_NAMES[kind]
        if not found:
            raise HsmError(
                f"no {what} labelled {label!r} on token {self.label!r}; run "
                "'kiosk bridge init' or check hsm.signing_key_label and "
                "hsm.seal_key_label"
            )
        raise HsmError(
            f"{len(found)} objects of kind {what} are labelled {label!r} on "
            f"token {self.label!r}; delete the extra ones"
        )

    def _aes_key(self, session: pkcs11.Session, label: str) -> Any:
        if not _objects(session, ObjectClass.SECRET_KEY, label):
            session.generate_key(
                KeyType.AES,
                256,
                label=label,
                id=os.urandom(16),
                store=True,
                template={
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: True,
                    Attribute.DECRYPT: True,
                },
            )
            logger.info("generated AES-256 key %s on token %s", label, self.label)
        return self._one(session, ObjectClass.SECRET_KEY, label)

    def _generate(
        self, session: pkcs11.Session, label: str
    ) -> ec.EllipticCurvePublicKey:
        if _objects(session, ObjectClass.PRIVATE_KEY, label):
            raise HsmError(
                f"a key labelled {label!r} is already on token {self.label!r}; "
                "use it, or delete it first"
            )
        params = session.create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: encode_named_curve_parameters(EC_CURVE)},
            local=True,
        )
        public, _private = params.generate_keypair(
            store=True,
            label=label,
            id=os.urandom(16),
            public_template={Attribute.VERIFY: True, Attribute.PRIVATE: False},
            private_template={
                Attribute.SIGN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.DERIVE: False,
            },
        )
        logger.info("generated EC P-256 key %s on token %s", label, self.label)
        return _load_ec_public_key(encode_ec_public_key(public))

    def _store_certificate(
        self, session: pkcs11.Session, label: str, cert: x509.Certificate
    ) -> bool:
        der = cert.public_bytes(serialization.Encoding.DER)
        existing = _objects(session, ObjectClass.CERTIFICATE, label)
        if len(existing) == 1 and bytes(existing[0][Attribute.VALUE]) == der:
            return False
        for old in existing:
            old.destroy()
        keys = _objects(session, ObjectClass.PRIVATE_KEY, label)
        key_id = bytes(keys[0][Attribute.ID]) if keys else b""
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.LABEL: label,
                Attribute.ID: key_id,
                Attribute.SUBJECT: cert.subject.public_bytes(),
                Attribute.ISSUER: cert.issuer.public_bytes(),
                Attribute.SERIAL_NUMBER: asn1_core.Integer(cert.serial_number).dump(),
                Attribute.VALUE: der,
            }
        )
        logger.info("stored certificate %s on token %s", label, self.label)
        return True


_KIND_NAMES = {
    ObjectClass.SECRET_KEY: "secret key",
    ObjectClass.PRIVATE_KEY: "private key",
    ObjectClass.PUBLIC_KEY: "public key",
    ObjectClass.CERTIFICATE: "certificate",
}


class _LockedSession:
    """The part of a pkcs11 Session pyHanko's signer uses, behind the lock.

    Objects are found again by their search attributes and ID at each use,
    so a signer outlives a session reopened after an HSM hiccup.
    """

    def __init__(self, token: HsmToken) -> None:
        self._token = token

    def get_objects(self, attrs: dict[Attribute, Any]) -> list[_LockedObject]:
        ids = self._token._run(
            "find objects",
            lambda s: [bytes(obj[Attribute.ID]) for obj in s.get_objects(attrs)],
        )
        return [_LockedObject(self._token, {**attrs, Attribute.ID: i}) for i in ids]


class _LockedObject:
    """A token object whose attribute reads and signatures hold the lock."""

    def __init__(self, token: HsmToken, attrs: dict[Attribute, Any]) -> None:
        self._token = token
        self._attrs = attrs

    def __getitem__(self, attribute: Attribute) -> Any:
        return self._token._run("read an attribute", lambda s: self._find(s)[attribute])

    def sign(self, data: bytes, **kwargs: Any) -> bytes:
        return self._token._run(
            "sign", lambda s: bytes(self._find(s).sign(data, **kwargs))
        )

    def _find(self, session: pkcs11.Session) -> Any:
        found = list(session.get_objects(self._attrs))
        if len(found) != 1:
            raise HsmError(
                f"the token object {self._attrs.get(Attribute.LABEL)!r} changed "
                f"while in use ({len(found)} matches)"
            )
        return found[0]


def _objects(session: pkcs11.Session, kind: ObjectClass, label: str) -> list[Any]:
    return list(session.get_objects({Attribute.CLASS: kind, Attribute.LABEL: label}))


def _load_ec_public_key(der: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise HsmError("the token returned a public key that is not an EC key")
    return key


def _describe(exc: p11.PKCS11Error) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name} ({text})" if text else name


def to_asn1(cert: AnyCertificate) -> asn1_x509.Certificate:
    """Return ``cert`` as the asn1crypto object pyHanko works with."""
    if isinstance(cert, x509.Certificate):
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return cert


def open_token(config: BridgeConfig) -> HsmToken:
    """Return the configured token; the session opens on first use.

    Raises:
        ConfigError: the PIN cannot be read.
    """
    hsm = config.hsm
    conf = config.path(hsm.softhsm_conf) if hsm.softhsm_conf else None
    return HsmToken(
        module=config.path(hsm.module),
        token_label=hsm.token_label,
        pin=hsm.read_pin(config.data_dir),
        softhsm_conf=conf.absolute() if conf else None,
    )


def token_labels(module: Path, softhsm_conf: Path | None = None) -> list[str]:
    """Return the labels of the initialised tokens the module offers now.

    The module is re-read, so tokens created by other programs show up;
    sessions of this process reopen on their next use.
    """
    shared = _module(module)
    with shared.lock:
        lib = shared.refresh(softhsm_conf)
        try:
            return [t.label for t in lib.get_tokens() if t.label]
        except p11.PKCS11Error as exc:
            raise HsmError(
                f"cannot list the tokens of {module}: {_describe(exc)}"
            ) from exc


def write_softhsm_conf(conf: Path, token_dir: Path) -> bool:
    """Write a SoftHSM2 configuration using ``token_dir``; False if it exists.

    Development only: the token directory holds the keys, encrypted with
    the user PIN.
    """
    token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if conf.exists():
        return False
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "# Written by 'kiosk bridge init': the development token store.\n"
        f"directories.tokendir = {token_dir.absolute()}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n",
        encoding="utf-8",
    )
    return True


def create_softhsm_token(conf: Path, label: str, pin: str, so_pin: str) -> None:
    """Create a SoftHSM2 token in the first free slot (development only).

    The token directory is the one ``conf`` names. This does not check
    whether a token with this label exists already: see :func:`token_labels`.
    The PINs are passed on softhsm2-util's command line, where other users of
    the machine could see them for a moment; that is acceptable for a
    development token only.
    """
    tool = shutil.which(SOFTHSM_UTIL)
    if tool is None:
        raise HsmError(
            f"{SOFTHSM_UTIL} was not found; install softhsm2 (apt-get install "
            "softhsm2) or create the token with your HSM's tools"
        )
    command = [tool, "--init-token", "--free", "--label", label]
    env = {**os.environ, "SOFTHSM2_CONF": str(conf.absolute())}
    try:
        result = subprocess.run(
            [*command, "--pin", pin, "--so-pin", so_pin],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HsmError(f"{SOFTHSM_UTIL} could not run: {exc}") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise HsmError(
            f"{SOFTHSM_UTIL} could not create token {label!r} "
            f"(exit {result.returncode}): {output}"
        )
    logger.info("created SoftHSM2 token %s", label)
