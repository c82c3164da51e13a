"""What the kiosk and the bridge agree on: schemas, topics, the copy's seal."""
