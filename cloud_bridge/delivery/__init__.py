"""Deliver issued copies to citizens by email and by wallet webhook."""
