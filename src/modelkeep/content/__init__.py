"""Streaming and hashing of content, shared by the SDK, the services and the adapters.

- ``chunking``: where a large file is cut into chunks (safetensors tensors, FastCDC);
- ``scanning``: one read of a large file gives its chunks, their digests and the file's;
- ``copying``: streaming copies that hash and write at once, in constant memory;
- ``verifying``: the one reader that hashes what it reads and fails on damaged bytes;
- ``hashcache``: what this machine already hashed, so an unchanged file costs a stat.

Digests themselves are spelled by ``modelkeep.domain.digest``. Nothing here imports the
services, the storage adapters, the client or the entrypoints.
"""
