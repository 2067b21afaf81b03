"""``policy set | show | test | history``, ``check``, ``approve``, ``reject``, ``gate``,
``attest verify | export | list``, ``card``, ``report governance``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import click
from rich.table import Table

from modelkeep.attest.bundle import BundleReport, raise_if_bad, verify_bundle
from modelkeep.domain.governance import Approval, CheckResult, GateResult
from modelkeep.entrypoints.cli.context import console, emit, json_option, state
from modelkeep.entrypoints.cli.options import stage_option, why_option
from modelkeep.errors import InvalidInput, PolicyNotMet

TO_STAGE = stage_option("--to", "--stage", required=True)
FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(("md", "html")),
    default="md",
    show_default=True,
    help="Markdown or a standalone HTML page.",
)
OUTPUT = click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write to this file, not stdout."
)


# policy -----------------------------------------------------------------------------------


@click.group()
def policy() -> None:
    """The registry's promotion policy: versioned YAML, per-model overrides."""


@policy.command("set")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def set_policy(file: str) -> None:
    """Store FILE as the registry's next policy version (a global admin).

    A file that does not parse, or names an unknown stage, role, metric or field, is
    refused with its line; nothing changes."""
    record = state().client.set_policy(Path(file))
    emit(
        {k: v for k, v in record.to_dict().items() if k != "document"},
        lambda: console.print(f"policy version {record.number} in force ({record.digest})"),
    )


@policy.command("show")
@click.option("--model", metavar="NAME", help="The rules that apply to this model.")
@json_option
def show_policy(model: str | None) -> None:
    """Print the policy in force (its YAML), or the rules that apply to one model."""
    client = state().client
    if model is not None:
        rules = client.model_policy(model)
        emit(rules, lambda: _print_rules(rules))
        return
    record = client.policy()
    emit(
        {"policy": record.to_dict() if record else None},
        lambda: console.print(
            f"# policy version {record.number} ({record.digest}), set by {record.created_by}\n"
            + record.document
            if record
            else "no policy: promotions need only the role",
            markup=False,
        ),
    )


def _print_rules(rules: dict[str, Any]) -> None:
    import yaml

    found = rules["policy"]
    head = f"policy version {found['number']}" if found else "no policy"
    console.print(f"# rules for {rules['model']} ({head})", markup=False)
    console.print(yaml.safe_dump(rules["rules"], sort_keys=False).rstrip(), markup=False)


@policy.command("history")
@json_option
def policy_history() -> None:
    """Every version of the policy, oldest first."""
    found = state().client.policy_history()
    table = Table("version", "digest", "set by", "at", box=None)
    for p in found:
        table.add_row(str(p.number), p.digest, p.created_by, p.created_at.isoformat())
    emit(
        [{k: v for k, v in p.to_dict().items() if k != "document"} for p in found],
        lambda: console.print(table if found else "no policy was ever set"),
    )


@policy.command("test")
@click.argument("ref", metavar="NAME@REF")
@TO_STAGE
@json_option
def test_policy(ref: str, stage: str) -> None:
    """Explain, rule by rule, what a promotion of NAME@REF to the stage has and lacks.

    Changes nothing; exits 0 either way (see 'modelkeep gate' for an exit code)."""
    result = state().client.gate(ref, to=stage)
    emit(result.to_dict(), lambda: _print_gate(result))


def _print_gate(result: GateResult) -> None:
    policy_text = f"policy version {result.policy['number']}" if result.policy else "no policy"
    console.print(
        f"{result.model}@{result.number} -> {result.stage} ({policy_text}; {result.digest})",
        markup=False,
    )
    for line in result.evaluation.explain():
        console.print(f"  {line}", markup=False)
    verdict = "passes" if result.passed else f"{len(result.evaluation.unmet)} rule(s) unmet"
    console.print(f"{verdict}", markup=False)


# checks ------------------------------------------------------------------------------------


@click.command()
@click.argument("ref", metavar="NAME@REF")
@click.option("--dataset", metavar="DATASET@REF", required=True, help="A registered dataset.")
@click.option("--target", metavar="COLUMN", required=True, help="The column to predict.")
@click.option("--sensitive", metavar="COLUMN", help="Measure fairness across this column.")
@click.option(
    "--suite",
    type=click.Path(dir_okay=False, exists=False),
    metavar="FILE",
    help="A YAML suite (default: evaluation, robustness, and fairness with --sensitive).",
)
@json_option
def check(ref: str, dataset: str, target: str, sensitive: str | None, suite: str | None) -> None:
    """Run a validation suite on NAME@REF against DATASET@REF, here, and record each result
    (metrics, pass/fail, dataset and model digests, a report) as evidence.

    Models load only from safe formats (skops, ONNX), never by unpickling; a command
    check runs any evaluator that prints its metrics as JSON. Exits 1 if a check's own
    assertions fail (the results are recorded either way). Each result names you as its
    producer: run it with a runner's token for evidence a policy's 'runner:' rule counts."""
    results = state().client.check(
        ref, dataset=dataset, target=target, sensitive=sensitive, suite=suite
    )
    emit([r.to_dict() for r in results], lambda: _print_checks(results))
    failed = [r for r in results if not r.passed]
    if failed:
        raise PolicyNotMet(
            "; ".join(f"{r.suite}: {', '.join(r.failures)}" for r in failed),
            "the results are recorded; fix the model or the data and check again",
        )


def _print_checks(results: list[CheckResult]) -> None:
    table = Table("#", "check", "result", "metrics", "dataset", "by", box=None)
    for r in results:
        metrics = ", ".join(f"{k}={_number(v)}" for k, v in sorted(r.metrics.items()))
        by = r.producer.describe() if r.producer else r.created_by
        result = "pass" if r.passed else "FAIL"
        table.add_row(str(r.id), r.suite, result, metrics, r.dataset or "-", by)
    console.print(table if results else "no check results")


def _number(value: float | None) -> str:
    return "null" if value is None else f"{value:.4g}"


@click.command("checks")
@click.argument("ref", metavar="NAME@REF")
@json_option
def list_checks(ref: str) -> None:
    """The check results recorded for NAME@REF, oldest first."""
    results = state().client.checks(ref)
    emit([r.to_dict() for r in results], lambda: _print_checks(results))


# approvals ---------------------------------------------------------------------------------


def _decision(decision: str) -> Any:
    @click.command(decision)
    @click.argument("ref", metavar="NAME@REF")
    @TO_STAGE
    @why_option("--comment", "--reason", "comment", help="Why, for the record.")
    @click.option(
        "--digest",
        metavar="SHA256",
        help="Refuse unless NAME@REF still names this digest (the one you reviewed).",
    )
    @json_option
    def command(ref: str, stage: str, comment: str | None, digest: str | None) -> None:
        client = state().client
        verb = client.approve if decision == "approve" else client.reject
        found = verb(ref, to=stage, comment=comment, digest=digest)
        emit(found.to_dict(), lambda: _print_decision(found))

    command.help = (
        f"{decision.capitalize()} promoting NAME@REF to the stage (an approver), bound to its "
        "digest and to the check results current now."
    )
    return command


def _print_decision(found: Approval) -> None:
    console.print(
        f"{found.decision}d {found.model}@{found.number} for {found.stage} "
        f"(#{found.id}, {found.version_digest}; evidence: "
        f"{len(found.check_ids)} check result(s))",
        markup=False,
    )


approve = _decision("approve")
reject = _decision("reject")


# gate ----------------------------------------------------------------------------------------


@click.command()
@click.argument("ref", metavar="NAME@REF")
@TO_STAGE
@click.option("--junit", type=click.Path(dir_okay=False), metavar="FILE", help="JUnit XML.")
@json_option
def gate(ref: str, stage: str, junit: str | None) -> None:
    """Exit 0 if promoting NAME@REF to the stage would pass the policy, else 1 with the
    unmet rules: a CI step. --junit writes one test case per rule."""
    result = state().client.gate(ref, to=stage)
    if junit:
        write_junit(result, Path(junit))
    emit(result.to_dict(), lambda: _print_gate(result))
    if not result.passed:
        unmet = "; ".join(f"{r.rule}: {r.detail}" for r in result.evaluation.unmet)
        raise PolicyNotMet(f"{result.model}@{result.number} may not enter {stage}: {unmet}")


def write_junit(result: GateResult, path: Path) -> None:
    rules = result.evaluation.rules
    suite = ElementTree.Element(
        "testsuite",
        name=f"modelkeep gate {result.model}@{result.number} -> {result.stage}",
        tests=str(max(len(rules), 1)),
        failures=str(sum(not r.passed for r in rules)),
        errors="0",
    )
    if not rules:
        ElementTree.SubElement(suite, "testcase", classname="policy", name="no rules")
    for rule in rules:
        case = ElementTree.SubElement(suite, "testcase", classname=rule.kind, name=rule.rule)
        if not rule.passed:
            ElementTree.SubElement(case, "failure", message=rule.detail).text = rule.detail
        else:
            ElementTree.SubElement(case, "system-out").text = rule.detail
    suites = ElementTree.Element("testsuites")
    suites.append(suite)
    ElementTree.indent(suites)
    try:
        path.write_bytes(ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True))
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}", "give a writable path") from None


# attestations --------------------------------------------------------------------------------


@click.group()
def attest() -> None:
    """Signed promotion attestations (in-toto statements in DSSE envelopes)."""


@attest.command("list")
@click.argument("ref", metavar="NAME@REF")
@json_option
def list_attestations(ref: str) -> None:
    """The attestations of NAME@REF, one per promotion."""
    found = state().client.attestations(ref)
    table = Table("#", "stage", "by", "at", "envelope", "override", box=None)
    for a in found:
        table.add_row(
            str(a.id),
            a.stage,
            a.actor,
            a.at.isoformat(),
            a.envelope_digest,
            a.override_reason or "",
        )
    emit([a.to_dict() for a in found], lambda: console.print(table if found else "none"))


@attest.command("export")
@click.argument("ref", metavar="NAME@REF")
@click.argument("dest", metavar="DIR", type=click.Path(file_okay=False))
@stage_option("--stage", "--to", required=False, help="The newest attestation for this stage.")
@json_option
def export(ref: str, dest: str, stage: str | None) -> None:
    """Write the newest attestation of NAME@REF and all its evidence into DIR, for
    'modelkeep attest verify --bundle DIR' anywhere, offline."""
    path = state().client.export_attestation(ref, dest, stage=stage)
    emit({"bundle": str(path)}, lambda: console.print(f"wrote {path}", markup=False))


@attest.command("verify")
@click.argument("ref", metavar="NAME@REF", required=False)
@stage_option(
    "--stage",
    "--to",
    required=False,
    help="The attestation of this stage: its signed statement must name it "
    "(NAME@STAGE implies it).",
)
@click.option(
    "--bundle",
    type=click.Path(file_okay=False, exists=True),
    metavar="DIR",
    help="Verify an exported bundle offline (no registry needed).",
)
@click.option(
    "--files",
    type=click.Path(file_okay=False, exists=True),
    metavar="DIR",
    help="With --bundle: the model's files, checked against the signed manifest.",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True),
    metavar="PEM",
    help="The store's public key you trust (default: the store's; --bundle needs it).",
)
@json_option
def verify(
    ref: str | None,
    stage: str | None,
    bundle: str | None,
    files: str | None,
    public_key: str | None,
) -> None:
    """Check an attestation: signature, chain of evidence, and that the files still match.
    Exit 3 if anything does not."""
    if (ref is None) == (bundle is None):
        raise click.UsageError("give NAME@REF or --bundle DIR")
    key = Path(public_key).read_bytes() if public_key else None
    if bundle is not None:
        report = verify_bundle(Path(bundle), Path(files) if files else None, key, stage=stage)
    else:
        if files is not None:
            raise click.UsageError("--files goes with --bundle")
        assert ref is not None
        report = state().client.verify_attestation(ref, stage=stage, public_key=key)
    emit(report.to_dict(), lambda: _print_bundle(report))
    raise_if_bad(report)


def _print_bundle(report: BundleReport) -> None:
    if report.key:
        console.print(f"key {report.key}", markup=False)
    for line in report.checked:
        console.print(f"ok  {line}", markup=False)
    for line in report.warnings:
        console.print(f"warning  {line}", markup=False)
    for line in report.problems:
        console.print(f"BAD  {line}", markup=False)
    console.print("attestation verified" if report.ok else "attestation NOT verified")


# cards and reports -------------------------------------------------------------------------


@click.command()
@click.argument("ref", metavar="NAME@REF")
@FORMAT
@OUTPUT
@json_option
def card(ref: str, fmt: str, output: str | None) -> None:
    """The model card of NAME@REF, from registry facts: intended use and limits (the
    version's meta fields intended_use, limitations, out_of_scope), lineage, metrics,
    checks, approvals, stage history and attestations."""
    _write(state().client.card(ref, format=fmt), output, fmt)


@click.group()
def report() -> None:
    """Reports for audits."""


@report.command("governance")
@click.option("--model", metavar="NAME", help="Only this model (default: every model).")
@FORMAT
@OUTPUT
@json_option
def governance_report(model: str | None, fmt: str, output: str | None) -> None:
    """Each model's evidence mapped to the NIST AI RMF functions GOVERN, MAP, MEASURE and
    MANAGE, with what is missing for each (the production version, else the newest)."""
    _write(state().client.governance_report(model, format=fmt), output, fmt)


def _write(text: str, output: str | None, fmt: str) -> None:
    """To ``output``, or stdout: the document itself, or with --json inside one."""
    if output is not None:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(
                f"cannot write {output}: {exc.strerror}", "give a writable path"
            ) from None
    document = {"format": fmt, "output": output, "text": None if output else text}
    emit(document, lambda: _print_text(text, output))


def _print_text(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text.rstrip("\n") + "\n")
