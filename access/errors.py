"""What the domain refuses, said in its own terms: the API turns each kind into an HTTP status (`app/errors.py`), the
CLI into a message and exit code 1. Every refusal carries a message the person who asked can act on."""


class Refused(Exception):
    """A request the domain will not carry out."""


class NotFound(Refused, LookupError):
    """Nothing by that id, or nothing the asker may see."""

    @classmethod
    def in_scope(cls, noun: str, row_id: int | str) -> "NotFound":
        # One answer for "absent" and "another province's": a scoped user learns nothing of other provinces.
        return cls(f"no {noun} {row_id} in your scope")


class InvalidValue(Refused, ValueError):
    """A value the request gave that cannot be used; `field` names it as the request spelt it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Forbidden(Refused, PermissionError):
    """The asker's role or province does not allow this."""


class Conflict(Refused):
    """The object's current state refuses the action (a running campaign cannot be started again)."""
