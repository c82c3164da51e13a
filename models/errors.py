"""Errors raised by the models package, one tree rooted at :class:`ModelError`.

Every message says what happened and what the operator or citizen can do.
"""

from kiosk.errors import KioskError


class ModelError(KioskError):
    """Base of every error the models package raises."""


class ManifestError(ModelError):
    """The model manifest is missing, unreadable or names an unknown model."""


class FetchError(ModelError):
    """A pinned package could not be downloaded or lacks a listed model file."""


class ModelHashError(ModelError):
    """A model file's SHA-256 differs from the one the manifest pins."""


class ModelMissingError(ModelError):
    """A model file listed in the manifest has not been fetched."""


class RuntimeMissingError(ModelError):
    """The inference runtime a model needs is not installed."""


class InferenceError(ModelError):
    """A runtime failed to load or run a model."""


class ImageError(ModelError):
    """An input image is empty, corrupt, too large, too small or of a bad format."""


class FaceNotFoundError(ModelError):
    """No face was found in an image that must show one."""


class IdCardError(ModelError):
    """A citizen ID card's QR text is malformed or inconsistent."""


class VariantRejectedError(ModelError):
    """A configured int8 variant did not keep its accuracy bound."""
