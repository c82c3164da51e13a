"""Kiosk-side telemetry and commands, independent of the visit agent.

:mod:`.outbox` stores every message in SQLite first; :mod:`.publisher`
connects to the broker with the kiosk's certificate, keeps the retained
status and last will, and drains the outbox in order; :mod:`.health`
gathers the periodic health report; :mod:`.commands` checks and runs the
office's signed commands. The agent wires them with :class:`.service.TelemetryService`.
"""
