"""Read the citizen ID card under the document camera: its QR and portrait.

The QR gives the card's fields (``models.id_card``); the portrait, on the
left of the card's front, becomes the face reference. Neither the portrait
nor the full ID number is stored or logged: the session keeps the masked
number, the name and the birth date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from drivers.camera import Pixels
from edge.errors import IdentityError
from edge.face import FaceChecker, FaceReference
from models.errors import ModelError
from models.id_card import IdCard, parse_id_card_qr
from models.qr import decode_qr_codes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardReading:
    """A read card: its fields and the portrait's face reference."""

    card: IdCard = field(repr=False)
    reference: FaceReference = field(repr=False)


def read_id_card(image: Pixels, faces: FaceChecker) -> CardReading:
    """Read the card's QR and portrait from a document camera still.

    Raises:
        IdentityError: no QR, a QR of something else, or no face on the card.
    """
    try:
        texts = decode_qr_codes(np.ascontiguousarray(image[:, :, ::-1]))
    except ModelError as exc:
        raise IdentityError("card_unreadable") from exc
    if not texts:
        raise IdentityError("card_no_qr")
    card = _first_card(texts)
    reference = faces.reference(portrait_region(image))
    if reference is None:
        logger.info("card %s: the portrait shows no face", card.masked_id_number)
        raise IdentityError("card_no_face")
    logger.info("read ID card %s", card.masked_id_number)
    return CardReading(card, reference)


def portrait_region(image: Pixels) -> Pixels:
    """Return the part of the card image where the portrait is printed."""
    height, width = image.shape[:2]
    return image[int(height * 0.15) : int(height * 0.95), : int(width * 0.4)]


def _first_card(texts: list[str]) -> IdCard:
    for text in texts:
        try:
            return parse_id_card_qr(text)
        except ModelError:
            continue
    raise IdentityError("card_not_citizen_id")
