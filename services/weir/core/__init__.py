"""Weir's domain core: settings and the event model. Pure logic, no I/O."""
