"""The citizen's touch-screen web UI, served to the kiosk's local browser."""
