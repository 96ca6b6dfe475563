"""Items and kits, the reference catalog, and kit nutrition against the Sphere standard."""
