"""Needs: requests for help, entitlements, an explained priority, and allocation runs."""
