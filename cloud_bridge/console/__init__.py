"""The justice officer's console: users, sessions, the review queue, decisions.

This package's ``__init__`` imports nothing, so the store's migrations can
import :mod:`.tables` without pulling in the web layer.
"""
