"""Workflows that cross domains, each written once.

An entry point (API, web, CLI) or the simulation calls one flow per action: receive against a
pledge, an allocation run, plan and re-plan dispatch, the outcomes of a tracking event, a
prescription becoming a medical request. A flow calls domain services in order; domains never
call back into each other. Flows never commit: the caller owns the transaction.
"""
