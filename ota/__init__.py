"""Over-the-air model updates: signed metadata, staged rollout, rollback."""
