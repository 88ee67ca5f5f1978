"""The one exception of the plan layer."""

from __future__ import annotations


class PlanError(ValueError):
    """The lab can't be resolved into a plan (e.g. too few pod CIDRs, no server).

    The design checks catch most of these first; the plan refuses what is left, with one
    message naming the part and the fault.
    """
