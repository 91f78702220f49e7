"""Pydantic models of the export routes (responses only: the routes take no body)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from chalicelib.schemas import Response


class ExportProgress(Response):
    done: int = Field(description="avatars written so far")
    total: int = Field(description="avatars to write (the project's count when the export started)")


class Export(Response):
    id: str
    scope: Literal["avatar", "project"]
    targetId: str
    status: Literal["pending", "running", "completed", "failed", "expired"]
    progress: ExportProgress
    downloadUrl: str | None = Field(description="presigned GET of the zip, signed at each read; only when completed")
    downloadExpiresIn: int | None = Field(description="seconds the download URL is valid for")
    bytes: int | None
    errorCode: str | None
    errorMessage: str | None
    createdAt: str
    updatedAt: str
    completedAt: str | None
    expiresAt: str = Field(description="when the zip is removed and the export answers `expired`")
