"""The errors of template parsing and execution, each with the template line it happened on, and the
encoders' EncodeError."""

from __future__ import annotations


class TemplateError(Exception):
    """A template could not be parsed or rendered. ``line`` is the 1-based line, or 0 if unknown."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message


class TemplateSyntaxError(TemplateError):
    """The template text is not valid Go template syntax."""


class TemplateExecError(TemplateError):
    """Executing the parsed template failed (a missing key with error_on_missing_key, a bad argument, ...)."""


class FetchError(TemplateError):
    """The server answered a secret read, list or write with an error, or could not be reached."""


class EncodeError(ValueError):
    """toJSON or toYAML met a value Go's encoders refuse (the template function reports it as a FuncError)."""
