"""Making, finding and revoking share links of final videos."""

import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from .models import ShareLink

MAX_EXPIRY_DAYS = 365
# What new_token() can make (base64url). Anything else is no token, and never reaches
# the database: PostgreSQL refuses a NUL in a string parameter with an error, not a miss.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class ShareRefused(Exception):
    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message, self.code = message, code


def new_token() -> str:
    return secrets.token_urlsafe(32)


def clean_expiry(value):
    """``expires_in_days`` of a request: None (never), or 1 to 365 whole days."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXPIRY_DAYS:
        raise ShareRefused(
            f"expires_in_days is a whole number of days from 1 to {MAX_EXPIRY_DAYS}, or null.",
            "invalid_expiry",
        )
    return timezone.now() + timedelta(days=value)


def create(user, project, video, *, expires_at=None) -> ShareLink:
    if links_of(user, video.id).count() >= settings.MAX_SHARE_LINKS_PER_VIDEO:
        raise ShareRefused(
            f"A video has at most {settings.MAX_SHARE_LINKS_PER_VIDEO} links: revoke one first.",
            "too_many_links",
        )
    return ShareLink.objects.create(
        token=new_token(),
        user=user,
        project_id=project.id,
        final_video_id=video.id,
        title=project.name,
        file=video.file,
        poster=video.poster,
        width=video.width,
        height=video.height,
        duration=video.duration,
        expires_at=expires_at,
    )


def links_of(user, final_video_id):
    return ShareLink.objects.filter(user=user, final_video_id=final_video_id)


def find_live(token: str) -> ShareLink | None:
    """The live link with this token, or None (unknown, revoked or expired alike)."""
    if not token or not TOKEN_SHAPE.fullmatch(token):
        return None
    return ShareLink.objects.live().filter(token=token).first()


def revoke(link: ShareLink) -> ShareLink:
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
    return link


def revoke_for_videos(user_id: int, final_video_ids) -> int:
    """Revoke the links of final videos that are being deleted (their project goes)."""
    return ShareLink.objects.filter(
        user_id=user_id, final_video_id__in=list(final_video_ids), revoked_at__isnull=True
    ).update(revoked_at=timezone.now())


def to_dict(link: ShareLink, request) -> dict:
    return {
        "id": link.id,
        "url": request.build_absolute_uri(reverse("share-page", args=[link.token])),
        "final_video_id": link.final_video_id,
        "status": link.status,
        "created_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
        "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
    }
