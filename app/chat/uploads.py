"""Image uploads: checked by their bytes (JPEG, PNG, WebP), size-limited and rate-limited."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import col

from app.chat.models import Upload
from app.db import UnitOfWork
from app.errors import BadInput, NotFound, RateLimited, TooLarge

UPLOADS_PER_MINUTE = 20


def sniff_image(data: bytes) -> str | None:
    """The image type the bytes really are, whatever the file is called."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def store_upload(
    uow: UnitOfWork,
    *,
    shop_id: str,
    owner_kind: str,
    owner_id: str,
    data: bytes,
    max_bytes: int,
    now: datetime,
) -> Upload:
    if len(data) > max_bytes:
        raise TooLarge(f"The file is over {max_bytes // (1024 * 1024)} MB.")
    content_type = sniff_image(data)
    if content_type is None:
        raise BadInput("Only JPEG, PNG and WebP images can be uploaded.", code="bad_image")
    recent = (
        await uow.session.execute(
            select(func.count())
            .select_from(Upload)
            .where(
                col(Upload.shop_id) == shop_id,
                col(Upload.owner_kind) == owner_kind,
                col(Upload.owner_id) == owner_id,
                col(Upload.created_at) > now - timedelta(minutes=1),
            )
        )
    ).scalar() or 0
    if recent >= UPLOADS_PER_MINUTE:
        raise RateLimited(f"At most {UPLOADS_PER_MINUTE} uploads a minute.")
    upload = Upload(
        shop_id=shop_id,
        owner_kind=owner_kind,
        owner_id=owner_id,
        content_type=content_type,
        size=len(data),
        data=data,
        created_at=now,
    )
    uow.session.add(upload)
    await uow.session.flush()
    return upload


async def image_payload(uow: UnitOfWork, shop_id: str, upload_id: str) -> dict[str, object]:
    """The payload of an image message: the upload must exist and belong to the shop."""
    row = await uow.session.execute(
        select(col(Upload.id), col(Upload.content_type), col(Upload.size)).where(
            col(Upload.id) == upload_id, col(Upload.shop_id) == shop_id
        )
    )
    found = row.first()
    if found is None:
        raise NotFound("No such upload.")
    return {
        "upload_id": found[0],
        "url": f"/api/v1/uploads/{found[0]}",
        "content_type": found[1],
        "size": found[2],
    }
