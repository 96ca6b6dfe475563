"""RelieFlink: pandemic and disaster relief from donation to doorstep."""

__version__ = "0.1.0"
