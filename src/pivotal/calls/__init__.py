"""Open calls: sealed-bid procurement markets and combinatorial auctions run as a service.

A call has public terms (:mod:`.terms`), a life cycle (:mod:`.lifecycle`), sealed reports
validated at submission (:mod:`.reports`), signed receipts (:mod:`.receipts`), a database with an
append-only event log (:mod:`.store`), a close that runs the mechanism once (:mod:`.close`) and a
published record anyone can verify (:mod:`.verify`). :class:`Call` ties them together.
"""

from pivotal.calls.call import RECORD_KIND, Call
from pivotal.calls.lifecycle import CallAuthError, CallCloseError, CallStateError, Phase
from pivotal.calls.terms import CallTerms, terms_from_document

__all__ = [
    "RECORD_KIND",
    "Call",
    "CallAuthError",
    "CallCloseError",
    "CallStateError",
    "CallTerms",
    "Phase",
    "terms_from_document",
]
