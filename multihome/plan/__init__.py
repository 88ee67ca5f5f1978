"""Resolve a spec into a concrete, fully named plan. Pure, no side effects."""
