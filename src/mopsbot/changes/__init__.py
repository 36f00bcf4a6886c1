"""Change requests to the martech stack, modelled on ITSM change management but small."""
