"""Face detection, alignment, embedding, verification and its calibration."""
