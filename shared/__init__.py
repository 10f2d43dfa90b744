"""Plumbing shared by every service: configuration, errors, envelopes, identity, MongoDB, events.

Nothing here knows about a domain model or a payload; those live with the service that owns them.
"""
