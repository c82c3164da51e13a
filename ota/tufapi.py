"""The python-tuf and securesystemslib names the update system uses, in one place.

python-tuf's public modules (``tuf.api.metadata``, ``tuf.ngclient``) and
securesystemslib's ``signer`` re-export these names without marking them as
exports, which ``mypy --strict`` rejects; importing them from the modules
that define them, here and only here, keeps every other module typed.
"""

from securesystemslib.signer._crypto_signer import CryptoSigner
from securesystemslib.signer._key import Key, SSlibKey
from securesystemslib.signer._signature import Signature
from securesystemslib.signer._signer import SecretsHandler, Signer
from tuf.api._payload import (
    MetaFile,
    Root,
    Signed,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.metadata import Metadata
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater

__all__ = [
    "CryptoSigner",
    "FetcherInterface",
    "Key",
    "MetaFile",
    "Metadata",
    "Root",
    "SSlibKey",
    "SecretsHandler",
    "Signature",
    "Signed",
    "Signer",
    "Snapshot",
    "TargetFile",
    "Targets",
    "Timestamp",
    "Updater",
    "UpdaterConfig",
]
