"""Model files, runtimes and on-device inference (OCR, faces, QR codes)."""
