"""What one fuzz case came to. A case passes as RIGHT (the float64 reference's answer),
REFUSED (a project error naming the op and the argument, where the case allows one) or
NOT_APPLICABLE (it breaks only something the called function does not take). It fails
as one of FAILURES; a judge returns its problem as one of the ``Problem`` classes below,
so that the kind is said where the problem is found and the summary can count each kind
(issue 15's "zero crashes and zero wrong answers")."""

from __future__ import annotations

RIGHT = "right"
REFUSED = "refused"
NOT_APPLICABLE = "not applicable"
WRONG = "wrong answer"        # a result unlike the reference's, or a bad call accepted silently
FALSE_REFUSAL = "false refusal"  # an error for a valid call
BAD_ERROR = "bad error"       # a refusal of the wrong type, or a message naming no op / argument
CRASH = "crash"               # the child process died or hung
HARNESS = "harness"           # the suite's own failure
PASSES = (RIGHT, REFUSED, NOT_APPLICABLE)
FAILURES = (WRONG, FALSE_REFUSAL, BAD_ERROR, CRASH, HARNESS)


class Problem(str):
    """A failed case's reason; its class says the kind."""
    kind = WRONG


class Wrong(Problem):
    kind = WRONG


class FalseRefusal(Problem):
    kind = FALSE_REFUSAL


class BadError(Problem):
    kind = BAD_ERROR


class Harness(Problem):
    kind = HARNESS


def kind_of(problem: str | None, passed: str = RIGHT) -> str:
    """The verdict of a judge's answer: ``passed`` for None, else the problem's kind (a
    plain string counts as a wrong answer)."""
    if problem is None:
        return passed
    return getattr(problem, "kind", WRONG)
