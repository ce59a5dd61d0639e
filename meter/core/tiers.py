"""Service tiers: the names meter gives the tier a call asked for and the tier that served it.

A request may ask ``service_tier`` ``default``, ``auto``, ``priority`` or ``flex``; the response
says what served it (``service_tier`` in the body, Azure's ``x-ms-service-tier`` header). Priority
and Flex are billed at their own rates, so the tier is part of a call's price. Both sides are
caller- or service-controlled text, so they are folded here to a closed vocabulary before anything
stores or labels them: a hostile or new value is ``"other"``, never itself.
"""

from __future__ import annotations

SERVICE_TIERS = ("default", "auto", "priority", "flex", "scale", "other")
"""Every tier name meter records (``scale`` is OpenAI's reserved-capacity tier)."""

_KNOWN = frozenset(SERVICE_TIERS)


def tier_name(value: object) -> str | None:
    """``value`` as one of ``SERVICE_TIERS`` (``"other"`` for any other text); ``None`` when absent."""
    if not isinstance(value, str) or not value:
        return None
    name = value.strip().lower()
    return name if name in _KNOWN else "other"


def priced_tier(served: str | None, requested: str | None) -> tuple[str | None, bool]:
    """The tier a call is priced at, and whether it is assumed (the service did not say which served it).

    The served tier wins. Without it the requested one is used, flagged: a priority request that
    Azure quietly served at standard would otherwise be billed high, and the flag says so. ``auto``
    asked for and not answered is priced as ``default`` (what serves it unless the deployment says
    otherwise), flagged too.
    """
    if served is not None:
        return served, False
    if requested is None:
        return None, False
    return ("default" if requested == "auto" else requested), True
