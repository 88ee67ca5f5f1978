"""Probes and checks against a running lab."""
