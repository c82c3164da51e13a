"""Reuse of certified copies by other public services, with citizens' consent."""
