"""cityhub: an open-source smart-city platform (NGSI-LD hub, edge, city brain, governance)."""

__version__ = "0.1.0"
