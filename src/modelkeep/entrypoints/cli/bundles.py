"""``bundle build | verify | export-oci`` and ``sign``: what a server or a registry
outside modelkeep needs to serve a version, and to check that it is the approved one."""

from __future__ import annotations

from pathlib import Path

import click

from modelkeep.attest.serving import BundleCheck
from modelkeep.entrypoints.cli.context import console, emit, json_option, state


@click.group()
def bundle() -> None:
    """Serving bundles: deterministic, signed archives of a version (docs/serving.md)."""


@bundle.command("build")
@click.argument("ref", metavar="NAME@REF")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="The archive to write (default NAME-N.bundle.tar.gz here).",
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@json_option
def build(ref: str, output: str | None, force: bool) -> None:
    """Write NAME@REF's serving bundle and print its digest (recorded on the version).

    A tar.gz of the version's files, its manifest, a serving config, a lock of the
    serving packages and a DSSE signature by the store's key over a manifest of every
    entry. The same version always gives the same bytes."""
    built = state().client.build_bundle(ref, output, force=force)
    where = output or f"{built.model}-{built.number}.bundle.tar.gz"
    emit(
        {**built.to_dict(), "path": where},
        lambda: console.print(f"{built.digest}  {where} ({built.ref})", markup=False),
    )


@bundle.command("verify")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True),
    metavar="PEM",
    help="The store's public key you trust ('modelkeep audit key > store.pem').",
)
@click.option(
    "--store-key",
    is_flag=True,
    help="Check the signature with the key of the registry at --uri ('audit key').",
)
@json_option
def verify(path: str, public_key: str | None, store_key: bool) -> None:
    """Check a bundle offline: the signature over its manifest, and every entry's sha256
    and size. Without --public-key or --store-key it is NOT verified (exit 3): the
    bundle's own key proves only that it is intact."""
    if public_key and store_key:
        raise click.UsageError("give --public-key or --store-key, not both")
    if store_key:
        report = state().client.verify_bundle(path)
    else:
        from modelkeep.attest.serving import verify_archive
        from modelkeep.client.files import open_input

        key = Path(public_key).read_bytes() if public_key else None
        with open_input(Path(path)) as stream:
            report = verify_archive(stream, key)
    emit(report.to_dict(), lambda: _print(report))
    report.raise_if_bad()


def _print(report: BundleCheck) -> None:
    console.print(f"bundle {report.digest}", markup=False)
    if report.key:
        console.print(f"key {report.key}", markup=False)
    for line in report.checked:
        console.print(f"ok  {line}", markup=False)
    for line in report.problems:
        console.print(f"BAD  {line}", markup=False)
    console.print("bundle verified" if report.ok else "bundle NOT verified")


@bundle.command("export-oci")
@click.argument("ref", metavar="NAME@REF")
@click.argument("dest", metavar="DIR", type=click.Path(file_okay=False))
@json_option
def export_oci(ref: str, dest: str) -> None:
    """Write NAME@REF as an OCI image layout in DIR (new or empty): each file a layer by
    its sha256, the serving config as config, artifactType
    application/vnd.modelkeep.model.v1. Push it with 'oras cp --from-oci-layout'."""
    digest = state().client.export_oci(ref, dest)
    emit(
        {"path": dest, "manifest_digest": digest},
        lambda: console.print(f"{digest}  {dest}", markup=False),
    )


@click.command()
@click.argument("ref", metavar="NAME@REF")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    required=True,
    help="The signature file to write (e.g. model.sig).",
)
@json_option
def sign(ref: str, output: str) -> None:
    """Write an OpenSSF model-signing signature of NAME@REF's files, signed with the
    store's P-256 key. Anyone checks a pulled copy without modelkeep:
    'model_signing verify key DIR --signature FILE --public_key PEM', the PEM from
    'modelkeep audit key --format openssf'."""
    path = state().client.sign(ref, output)
    emit({"path": str(path)}, lambda: console.print(f"wrote {path}", markup=False))
