"""How a render fails: the two exceptions the renders raise, and what users are told.

The renders run FFmpeg and the file system under the hood; what they raise is kept to
:class:`RenderError` (a message a user can be shown, a code the job records and the UI
and the retry decision go by) and :class:`RenderCancelled`. :func:`render_error`
translates a low-level failure into one, so every stage and helper says "the disk is
full" the same way.
"""

import errno


class RenderError(Exception):
    """A render failed for a reason a user can be told (``message``) and a ``code``."""

    def __init__(self, message: str, code: str = "render_failed"):
        super().__init__(message)
        self.message = message
        self.code = code


class RenderCancelled(Exception):
    """``should_cancel`` said stop; the partial output has been removed."""


# What the framing render and the media helpers tell users, per code.
MESSAGES = {
    "source_missing": "A source clip of this export is missing. Please upload it again.",
    "source_corrupt": "A source clip of this export could not be decoded; it may be damaged.",
    "encode_failed": "The video could not be encoded.",
    "disk_full": "The server ran out of disk space while writing the video.",
    "upscale_failed": "AI upscaling failed.",
    "invalid_edit": "The crop keyframes of a clip are invalid; please edit them again.",
}


def failure(code: str) -> RenderError:
    """A RenderError with the standard message of ``code``."""
    return RenderError(MESSAGES[code], code)


def render_error(exc: BaseException, code: str) -> RenderError:
    """A RenderError for ``exc``; running out of disk space is always ``disk_full``."""
    if isinstance(exc, RenderError):
        return exc
    if getattr(exc, "errno", None) == errno.ENOSPC:
        code = "disk_full"
    elif isinstance(exc, FileNotFoundError) and code == "source_corrupt":
        code = "source_missing"
    return RenderError(MESSAGES.get(code, MESSAGES["encode_failed"]), code)
