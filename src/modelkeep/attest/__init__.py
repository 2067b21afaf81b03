"""Attestation bundles: written from a store's evidence, verified with nothing but files.

``bundle`` holds the layout, ``write_bundle`` (``attest export``) and ``verify_bundle``
(``attest verify``, ``Client.verify_bundle``). The statements and signatures themselves
are the domain's (``modelkeep.domain.attestation``); this package adds the file I/O, so
it sits outside the domain, and outside the services so that the SDK can verify a
bundle without them.
"""
