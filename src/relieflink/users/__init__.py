"""Users, roles, sign-in sessions, and the single place where access is decided."""
