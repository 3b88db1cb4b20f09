"""Checking a published call record (``pivotal call verify``).

1. The record's signature under its public key (and, if given, that key is the one the
   participant was shown when it submitted).
2. Each receipt given: its signature, its call and the terms it was issued under (receipts carry
   the hash of the terms but the deadline; older receipts without it are checked without); and
   each participant's latest receipt given against the record's list of report hashes: the same
   sequence number and hash (a report listed later than it is a revision the participant did
   not make, unless it gives that revision's receipt), or no report after a withdrawal.
3. When the terms published the reports: each report's hash, the reserves in the assembled
   file against those the terms publish (an operator's shill bid named ``reserve:...`` would
   change the outcome), and the outcome recomputed by the mechanism (always: the outcome's
   mechanism is the payment rule the terms announce) (:func:`pivotal.verify.verify`,
   the check ``pivotal verify`` runs on a ``run`` result). Without the reports, the outcome
   cannot be recomputed by outsiders, and the check says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pivotal.calls.call import RECORD_KIND
from pivotal.calls.receipts import check_signature
from pivotal.calls.reports import reserve_entries
from pivotal.calls.terms import RESERVE_PREFIX, terms_from_document
from pivotal.errors import InputError, PivotalError
from pivotal.results import canonical_json, sha256_of


@dataclass(frozen=True)
class RecordCheck:
    """The outcome of checking a record."""

    checked: int
    recomputed: bool
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.problems


def _entries_of(kind: str, document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each participant's canonical report, read back from the assembled file."""
    if kind == "market":
        out = {}
        for side in ("producers", "buyers"):
            for e in document.get(side) or []:
                if not str(e.get("name", "")).startswith(RESERVE_PREFIX):
                    out[str(e["name"])] = e
        return out
    bids: dict[str, list[dict[str, Any]]] = {}
    for b in document.get("bids") or []:
        name = str(b.get("bidder"))
        if not name.startswith(RESERVE_PREFIX):
            bids.setdefault(name, []).append({"bundle": b["bundle"], "value": float(b["value"])})
    return {name: {"bidder": name, "bids": bs} for name, bs in bids.items()}


def _reserves_of(kind: str, document: dict[str, Any]) -> set[str]:
    """The operator's reserves in an assembled file (``reserve:...`` entries or bids), each as
    canonical JSON."""
    if kind == "market":
        return {
            canonical_json(e)
            for side in ("producers", "buyers")
            for e in document.get(side) or []
            if str(e["name"]).startswith(RESERVE_PREFIX)
        }
    return {
        canonical_json([str(b["bidder"]), sorted(map(str, b["bundle"])), float(b["value"])])
        for b in document.get("bids") or []
        if str(b["bidder"]).startswith(RESERVE_PREFIX)
    }


def _reserves_expected(terms: Any) -> set[str]:
    """The reserves the record's terms publish, as :func:`_reserves_of` writes them."""
    parsed = terms_from_document(terms, source="the record's terms")
    market, auction = reserve_entries(parsed)
    if parsed.kind == "market":
        return _reserves_of("market", {"producers": market})
    return _reserves_of("auction", {"bids": auction})


def verify_record(
    record: Any,
    *,
    public_key: str | None = None,
    receipts: list[dict[str, Any]] | None = None,
    terms: dict[str, Any] | None = None,
) -> RecordCheck:
    """Check a published record (see the module docstring). ``terms``: the terms the
    participant was shown (``GET /v1/terms``, or the ``terms`` of ``GET /v1/call``, which leaves
    out the invitations): the record's must be the same, but for a deadline extended later. A
    record or receipt whose shape is wrong (a field of the wrong type, a missing key) is a
    problem of the check, not a crash."""
    if not isinstance(record, dict) or record.get("kind") != RECORD_KIND:
        raise InputError(
            f"not a call record: expected the JSON of 'pivotal call result' ('kind': "
            f"'{RECORD_KIND}')"
        )
    problems: list[str] = []
    counts = [1, 0]  # checks made, whether the outcome was recomputed
    try:
        if terms is not None:
            _check_terms(record, terms, problems)
        _check_record(record, public_key, receipts or [], problems, counts)
    except PivotalError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        problems.append(f"the record or a receipt is malformed ({type(exc).__name__}: {exc})")
    return RecordCheck(counts[0], bool(counts[1]), tuple(problems))


def _check_terms(record: dict[str, Any], shown: dict[str, Any], problems: list[str]) -> None:
    """The record's terms against the terms the participant was shown."""
    published = record.get("terms")
    if not isinstance(published, dict):
        problems.append("the record has no terms")
        return
    given_terms = terms_from_document(
        {"invited": published.get("invited", []), **shown}, source="the terms given"
    )
    try:
        used_terms = terms_from_document(published, source="the record's terms")
    except InputError as exc:
        problems.append(f"the record's terms are not valid terms: {exc}")
        return
    given, used = given_terms.public_document(), used_terms.public_document()
    differ = sorted(
        k for k in set(given) | set(used) if k != "deadline" and given.get(k) != used.get(k)
    )
    if differ:
        problems.append(f"the record's terms differ from the terms given in {differ}")
    if used_terms.deadline < given_terms.deadline:
        problems.append(
            f"the record's deadline {used['deadline']} is before the one given "
            f"{given['deadline']} (a deadline can only be extended)"
        )


def _terms_hash(terms: Any) -> str | None:
    """The hash receipts carry, of the record's terms (None when they are not valid terms)."""
    try:
        return terms_from_document(terms, source="the record's terms").sha256()
    except InputError:
        return None


def _check_record(
    record: dict[str, Any],
    public_key: str | None,
    receipts: list[dict[str, Any]],
    problems: list[str],
    counts: list[int],
) -> None:
    key = str(record.get("public_key", ""))
    if public_key is not None and public_key.lower() != key.lower():
        problems.append("the record's public key is not the expected public key")
    if not check_signature(record, key):
        problems.append("the record's signature does not match its content (tampered record)")
    terms = record.get("terms") or {}
    listed = {str(r["participant"]): r for r in record.get("reports") or []}
    valid = []
    for rc in receipts:
        counts[0] += 1
        who = rc.get("participant")
        if not check_signature(rc, key):
            problems.append(f"receipt seq {rc.get('seq')} of {who}: signature does not verify")
        elif rc.get("call") != terms.get("name"):
            problems.append(f"receipt seq {rc.get('seq')} of {who}: it is for another call")
        elif "terms_hash" in rc and rc["terms_hash"] != _terms_hash(terms):
            problems.append(
                f"receipt seq {rc.get('seq')} of {who}: the record's terms are not the terms "
                "the report was accepted under (their hashes differ; a deadline extension "
                "does not change it)"
            )
        else:
            valid.append(rc)
    # a participant's later receipt (a revision, a withdrawal) supersedes its earlier ones: the
    # latest receipt given must match the list exactly (a listed report later than it is a
    # revision the participant did not make, or whose receipt it did not give)
    latest: dict[str, dict[str, Any]] = {}
    for rc in valid:
        who = str(rc["participant"])
        if who not in latest or int(rc["seq"]) > int(latest[who]["seq"]):
            latest[who] = rc
    for who, rc in latest.items():
        seq = int(rc["seq"])
        entry = listed.get(who)
        if rc.get("action") == "withdraw":
            if entry is not None:
                problems.append(f"{who} withdrew (seq {seq}) but a report is listed")
        elif entry is None:
            problems.append(f"{who}: receipt seq {seq} but no report is listed")
        elif int(entry["seq"]) == seq and entry.get("sha256") != rc.get("report_sha256"):
            problems.append(f"{who}: the listed report hash differs from the receipt's")
        elif int(entry["seq"]) < seq:
            problems.append(f"{who}: the listed report is older than the receipt seq {seq}")
        elif int(entry["seq"]) > seq:
            problems.append(
                f"{who}: the listed report (seq {entry['seq']}) is later than the latest "
                f"receipt given (seq {seq}): a revision {who} did not make, or give its receipt"
            )
    outcome = record.get("outcome")
    if not isinstance(outcome, dict):
        raise InputError("the record has no outcome", field="outcome")
    if "void" not in outcome:  # the mechanism the terms announce, not another one
        rule = terms.get("payment_rule", "vcg") if terms.get("kind") == "auction" else "vcg"
        ran = (outcome.get("kind"), outcome.get("mechanism"))
        if ran != (terms.get("kind"), rule):
            problems.append(
                f"the outcome is a {ran[0]} '{ran[1]}' outcome; the terms announce a "
                f"{terms.get('kind')} paying '{rule}'"
            )
    document = outcome.get("input")
    if not isinstance(document, dict):
        return
    counts[1] = 1
    kind = str(terms.get("kind"))
    try:
        expected = _reserves_expected(terms)
    except InputError as exc:
        problems.append(f"the record's terms are not valid terms: {exc}")
        expected = set()
    found = _reserves_of(kind, document)
    if found != expected:
        problems.append(
            f"the outcome's input has reserves {sorted(found)}, the terms give {sorted(expected)} "
            "(a reserve the terms do not publish changes the outcome)"
        )
    entries = _entries_of(kind, document)
    if set(entries) != set(listed):
        problems.append(
            f"the published reports are from {sorted(entries)}, the list names {sorted(listed)}"
        )
    for name, entry in entries.items():
        counts[0] += 1
        if name in listed and sha256_of(entry) != listed[name].get("sha256"):
            problems.append(f"{name}: the published report does not match its listed hash")
    if "void" not in outcome:
        from pivotal.verify import verify

        try:
            check = verify(outcome)
        except InputError as exc:  # the recorded input does not hash to the outcome's
            problems.append(f"outcome: {exc}")
        else:
            counts[0] += check.checked
            problems.extend(check.mismatches)


__all__ = ["RecordCheck", "verify_record"]
