"""The kiosk agent: the citizen's web UI, visit state machine and outbox."""
