"""The long-lived resources of one running process, built in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from app.chat.appender import MessageAppender
from app.chat.delivery import ChatLoader
from app.clock import Clock
from app.config import Settings
from app.db import Database
from app.observability.metrics import Metrics
from app.realtime.bus import Bus
from app.realtime.hub import Hub
from app.routing.dispatcher import Dispatcher
from app.routing.presence import PresenceHeartbeat
from app.scheduler import JobRunner


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    db: Database
    bus: Bus
    hub: Hub
    loader: ChatLoader
    dispatcher: Dispatcher
    jobs: JobRunner
    presence: PresenceHeartbeat
    appender: MessageAppender
    metrics: Metrics
