"""Files of any size: stored whole (one blob) or chunked (a recipe and its chunks).

A chunked file's recipe is recorded only once it is known to rebuild the file: chunks
present with their sizes, and (unless the caller read and hashed the file itself, as the
embedded store's client does) the chunks re-read in order to hash to the file's digest.
One recipe per file digest, verified, so nobody can make another user's file
unreadable by recording a false recipe for it first.

Whoever is no global reader may name in a recipe only chunks it sent or may read, and
reads a file only through a version, run or dataset it may read (``scopes``); what it
sends is recorded as sent by it.

Reads rebuild a file from its chunks with a few chunks fetched ahead in parallel, each
chunk verified by its own digest and the whole file by the file's digest.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

from modelkeep.content.copying import AHEAD, in_order
from modelkeep.content.verifying import VerifyingReader
from modelkeep.domain import access, integrity
from modelkeep.domain.digest import check_digest, digest_of, sha256_digest
from modelkeep.domain.recipes import MAX_CHUNK_BYTES, ChunkRef, Recipe
from modelkeep.errors import BlobNotFound, DigestMismatch, InvalidInput, MissingChunk
from modelkeep.services import scopes
from modelkeep.services.context import ServiceContext

Opener = Callable[[str], BinaryIO]


def put_recipe(ctx: ServiceContext, recipe: Recipe) -> Recipe:
    """Record ``recipe``, whose file digest the caller computed from the very bytes it
    stored as chunks (the in-process client). A remote client calls ``assemble``."""
    ctx.authorize(access.PUSH, access.ANY_MODEL)
    with ctx.store.transaction() as tx:
        scopes.check_usable(ctx, tx, (c.digest for c in recipe.chunks))
        known = tx.recipes.get(recipe.digest)
    if known is None:
        _check_chunks(ctx, recipe.chunks)
        with ctx.store.transaction(write=True) as tx:
            # under the lock gc deletes under: the chunks are there, the recipe blob too
            _check_chunks(ctx, recipe.chunks)
            ctx.blobs.put_bytes(recipe.canonical_bytes())
            tx.recipes.add(recipe, ctx.clock())
            tx.commit()
    scopes.record_uploads(ctx, [recipe.digest])  # it holds every chunk, so the file
    return known or recipe


def assemble(ctx: ServiceContext, chunker: str, chunks: Sequence[ChunkRef]) -> Recipe:
    """The file that these stored chunks make, in this order: hashed here from the
    chunks themselves (each verified when it was stored), recorded, returned. So a
    recipe always rebuilds its file, whoever sent it."""
    ctx.authorize(access.PUSH, access.ANY_MODEL)
    _check_chunks(ctx, chunks)
    with ctx.store.transaction() as tx:
        scopes.check_usable(ctx, tx, (c.digest for c in chunks))
    hasher = hashlib.sha256()
    for data in in_order(lambda i: ctx.blobs.read_unchecked(chunks[i].digest), len(chunks)):
        hasher.update(data)
    return put_recipe(ctx, Recipe.of(digest_of(hasher), chunker, chunks))


def store_chunk(ctx: ServiceContext, data: bytes, digest: str) -> bool:
    """Store a chunk this process just read and hashed, unless the store has it; True
    if it was new."""
    ctx.authorize(access.PUSH, access.ANY_MODEL)
    scopes.record_uploads(ctx, [digest])
    if ctx.blobs.touch(digest):  # reused: young again, so gc spares it meanwhile
        return False
    ctx.blobs.put_hashed(data, digest)
    return True


MAX_PACK_CHUNKS = 256


def parse_pack(listing: str) -> list[ChunkRef]:
    """``digest:size,digest:size,…``: the chunks a pack upload holds, in order."""
    refs = []
    for item in filter(None, listing.split(",")):
        digest, _, size = item.strip().rpartition(":")
        if not size.isdigit() or not 0 < int(size) <= MAX_CHUNK_BYTES:
            raise InvalidInput(f"{item!r} is not digest:size with a size of 1 to {MAX_CHUNK_BYTES}")
        refs.append(ChunkRef(check_digest(digest), int(size)))
    if not 0 < len(refs) <= MAX_PACK_CHUNKS:
        raise InvalidInput(f"a pack holds 1 to {MAX_PACK_CHUNKS} chunks, not {len(refs)}")
    return refs


def put_pack(ctx: ServiceContext, stream: BinaryIO, chunks: list[ChunkRef]) -> int:
    """Store chunks sent back to back in one body; each must hash to its digest.
    Chunks before a bad one stay stored (a retry skips them); returns how many were new."""
    ctx.authorize(access.PUSH, access.ANY_MODEL)
    stored = 0
    for chunk in chunks:
        data = _read_exactly(stream, chunk.size)
        actual = sha256_digest(data)
        if actual != chunk.digest:
            raise DigestMismatch(f"the uploaded chunk {chunk.digest} hashes to {actual}")
        if not ctx.blobs.has(chunk.digest):
            ctx.blobs.put_hashed(data, chunk.digest)
            stored += 1
    if stream.read(1):
        raise InvalidInput("the body is longer than its chunks", "send exactly the listed chunks")
    scopes.record_uploads(ctx, [c.digest for c in chunks])  # each hashed here
    return stored


def _read_exactly(stream: BinaryIO, size: int) -> bytearray:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            raise InvalidInput(f"the body ended {size - got} bytes short of its chunks")
        got += n
    return buffer


def _check_chunks(ctx: ServiceContext, chunks: Sequence[ChunkRef]) -> None:
    for chunk in chunks:
        stored = ctx.blobs.stat(chunk.digest)
        if stored is None:
            raise BlobNotFound(
                f"chunk {chunk.digest} was not uploaded", "upload every chunk of the file first"
            )
        if stored.size != chunk.size:
            raise InvalidInput(
                f"chunk {chunk.digest} is {stored.size} bytes in the store, not {chunk.size}"
            )


def file_recipe(ctx: ServiceContext, digest: str) -> Recipe:
    """How to read the file ``digest``: its recipe, or one whole blob."""
    check_digest(digest)
    ctx.authorize(access.READ, access.ANY_MODEL)
    with ctx.store.transaction() as tx:
        scopes.check_readable(ctx, tx, digest)
        recipe = tx.recipes.get(digest)
        recorded = tx.recipes.digests([digest]).get(digest) if recipe is not None else None
    if recipe is not None:
        # the chunk rows must be the recipe blob recorded with them: a changed row would
        # rebuild another file, caught only after its bytes were fetched
        integrity.refuse(integrity.recipe_mismatches(recipe, recorded or "", None))
        return recipe
    stored = ctx.blobs.stat(digest)
    if stored is None:
        raise BlobNotFound(f"file {digest} is not in the store")
    return Recipe.whole(digest, stored.size)


def open_file(ctx: ServiceContext, digest: str) -> BinaryIO:
    """The file's bytes, rebuilt from its chunks if it has any, verified as read."""
    recipe = file_recipe(ctx, digest)
    return open_recipe(ctx.blobs.open, recipe)


def open_recipe(opener: Opener, recipe: Recipe) -> BinaryIO:
    if recipe.is_whole:
        return opener(recipe.digest)
    return io.BufferedReader(
        VerifyingReader(chunk_bytes(opener, recipe), recipe.digest, mismatch=_not_the_file),
        1024 * 1024,
    )


def chunk_bytes(opener: Opener, recipe: Recipe, ahead: int = AHEAD) -> Iterator[bytes]:
    """Each chunk's bytes in order, verified; ``ahead`` chunks are fetched in parallel."""
    chunks = recipe.chunks
    return in_order(
        lambda i: read_chunk(opener, chunks[i].digest, chunks[i].size), len(chunks), ahead
    )


def read_chunk(opener: Opener, digest: str, size: int) -> bytes:
    """One chunk's bytes, verified by the reader against ``digest``."""
    try:
        with opener(digest) as stream:
            data = stream.read(size)  # one big read, not readall's 8 KiB steps
            extra = stream.read(1)  # end of stream: the reader checks the digest here
    except BlobNotFound:
        raise MissingChunk(f"chunk {digest} is missing from the store") from None
    if len(data) != size or extra:
        raise DigestMismatch(f"chunk {digest} is not {size} bytes long")
    return data


def _not_the_file(expected: str, actual: str) -> DigestMismatch:
    return DigestMismatch(
        f"file {expected} rebuilt from its chunks hashes to {actual}",
        "run 'modelkeep verify' to find the damaged chunk",
    )
