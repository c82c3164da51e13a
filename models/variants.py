"""Choose each model's precision (float or int8) per platform, by configuration.

``kiosk models quantize`` writes its int8 variants under ``int8/`` beside
the fetched files, with ``variants.json``: each variant's file, SHA-256,
agreement with the float model and the bound it must keep. A kiosk's
configuration (``[models] variants``) names the precision of each model;
an int8 variant is loaded only when that record says it kept its bound and
the file still has the recorded hash, so a variant that loses accuracy is
never used, whatever the configuration says.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.errors import ModelMissingError, VariantRejectedError
from models.manifest import ModelEntry

logger = logging.getLogger(__name__)

INT8_DIR = "int8"
RECORD_FILE = "variants.json"


def record_variant(model_dir: Path, report: Mapping[str, Any]) -> None:
    """Add or replace one variant's report (model, path, sha256, ...) in the record."""
    path = model_dir / INT8_DIR / RECORD_FILE
    record = _read_record(path)
    record[str(report["model"])] = {
        "file": Path(str(report["path"])).name,
        "sha256": report["sha256"],
        "size": int(report["size"]),
        "agreement": float(report["agreement"]),
        "agreement_bound": float(report["agreement_bound"]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")


def resolve_variant(
    entry: ModelEntry, model_dir: Path, precision: str = "fp32"
) -> tuple[ModelEntry, Path]:
    """Return the entry and directory to load for ``precision`` of ``entry``.

    Raises:
        ModelMissingError: int8 is asked for but was never made.
        VariantRejectedError: the int8 variant did not keep its accuracy bound.
    """
    if precision == "fp32":
        return entry, model_dir
    record = _read_record(model_dir / INT8_DIR / RECORD_FILE).get(entry.name)
    if record is None:
        raise ModelMissingError(
            f"no int8 variant of {entry.name} in {model_dir / INT8_DIR}; run "
            "`kiosk models quantize` or configure it as fp32"
        )
    if record["agreement"] < record["agreement_bound"]:
        raise VariantRejectedError(
            f"the int8 variant of {entry.name} agrees with the float model at "
            f"{record['agreement']}, under its bound {record['agreement_bound']}; "
            "configure it as fp32"
        )
    variant = entry.model_copy(
        update={
            "file": record["file"],
            "sha256": record["sha256"],
            "size": record["size"],
        }
    )
    logger.info("using the int8 variant of %s", entry.name)
    return variant, model_dir / INT8_DIR


def _read_record(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
