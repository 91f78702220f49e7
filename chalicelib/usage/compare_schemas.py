"""Pydantic models of the compare route (GET /projects/{id}/compare): its query and its answer."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chalicelib.schemas import Avatar, Response


class CompareQuery(BaseModel):
    """?avatars=a,b[,c[,d]]&days=30 (the route reads them itself, to say precisely what is wrong)."""
    model_config = ConfigDict(extra="ignore")
    avatars: Annotated[str, StringConstraints(max_length=200)] = Field(
        description="2 to 4 distinct avatar ids of the project, comma-separated")
    days: Annotated[int, Field(ge=1, le=90)] = Field(30, description="the window: this many UTC days ending today")


class AppUse(Response):
    appId: str
    appName: str = Field(description="the name the app's latest counted event carried")
    total: int


class AvatarAppUse(AppUse):
    daily: list[int] = Field(description="uses per day, one per entry of `dates` (zeros filled)")


class ComparedAvatar(Response):
    avatar: Avatar
    total: int = Field(description="uses in the window, every app")
    daily: list[int] = Field(description="uses per day, every app, one per entry of `dates`")
    byApp: list[AvatarAppUse] = Field(description="apps that used it in the window, most uses first")
    truncated: bool = Field(description="true when the avatar had more app-days in the window than one read "
                                        "returns (over 100 apps a day); the numbers are then a lower bound")


class Comparison(Response):
    projectId: str
    days: int
    from_: str = Field(alias="from", description="first day of the window (UTC, yyyy-mm-dd)")
    to: str = Field(description="last day of the window: today (UTC)")
    dates: list[str] = Field(description="every day of the window, oldest first")
    apps: list[AppUse] = Field(description="every app that used any of the avatars in the window, most uses first")
    avatars: list[ComparedAvatar] = Field(description="in the order asked")
