"""Read document pages: text line detection and recognition on trueocr's models."""
