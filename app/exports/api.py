"""HTTP: CSV exports for supervisors and admins, streamed page by page from the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.deps import Ctx, require
from app.exports import service
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1/exports", tags=["exports"], responses=ERROR_RESPONSES)

Exporter = Annotated[Agent, require(Permission.EXPORT_DATA)]
# `from`/`to`: ISO dates or datetimes in the shop's time zone (as the metrics read them).
From = Annotated[str | None, Query(alias="from", max_length=64)]
To = Annotated[str | None, Query(alias="to", max_length=64)]
# `tag`: only conversations carrying that tag of the shop's list (and their messages).
TagName = Annotated[str | None, Query(min_length=1, max_length=32)]

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}},
        "description": "UTF-8 CSV with a byte-order mark; `X-Export-Rows` says how many rows follow the header.",
    }
}


@router.get("/{kind}.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
async def export_csv(
    kind: str,
    staff: Exporter,
    ctx: Ctx,
    start: From = None,
    end: To = None,
    tag: TagName = None,
) -> StreamingResponse:
    export = await service.prepare(
        ctx.db, kind, staff.shop_id, start, end, ctx.clock.now(), tag=tag
    )

    async def body() -> AsyncIterator[bytes]:
        async for chunk in service.stream(ctx.db, export):
            yield chunk.encode("utf-8")

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(export.filename)}",
            "X-Export-Rows": str(export.rows),
            "Cache-Control": "no-store",
        },
    )
