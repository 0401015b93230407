"""The metrics' rules as pure functions over plain rows: no I/O, tested by tables of cases.

The service streams each conversation's messages through `score_conversation`, adds
the scores and ratings into a `Tally` per agent and one for the shop, and `summarize`
turns a tally into the numbers the API shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from app.errors import BadInput

# A buyer message counts as answered when an agent replies within this (3分钟回复率).
REPLY_WINDOW = timedelta(seconds=180)
DEFAULT_PERIOD = timedelta(days=7)
# Bounds one request's work: a year of a shop's messages is read at most.
MAX_PERIOD = timedelta(days=366)
RATE_DIGITS = 4
SECONDS_DIGITS = 1


@dataclass(frozen=True)
class Said:
    """One message as the metrics see it: who sent it and when (system notices are left out)."""

    sender: str  # "buyer" | "agent"
    at: datetime


@dataclass(frozen=True)
class ConversationScore:
    judged: int  # buyer messages weighed for the 3-minute reply rate
    answered: int  # of those, answered by an agent within REPLY_WINDOW
    first_response_s: float | None  # None: no agent message after assignment


def _at_once(at: datetime) -> datetime:
    return at


def score_conversation(
    assigned_at: datetime | None,
    messages: Iterable[Said],
    window: timedelta = REPLY_WINDOW,
    clock_start: Callable[[datetime], datetime] = _at_once,
) -> ConversationScore:
    """Judge one conversation's replies; `messages` come in sequence order.

    The clock of a buyer message starts when an agent could first see it: when it was
    sent, or at `assigned_at` if it was sent while the conversation waited (as Douyin's
    人工3分钟回复率 starts when the conversation reaches a human). So the opening
    question counts, and the time it spent in the queue does not count against anyone.

    - Each buyer message still unanswered at `assigned_at` or sent after it is judged by
      the next agent message: answered when that reply came within `window` of the
      message's clock start (180 s counts, 181 s does not). Several buyer messages
      before one reply are each judged by it; one never answered counts as not answered.
    - Agent messages before `assigned_at` (a previous agent's, before a transfer) answer
      what was asked before them, and those questions are not judged here.
    - First response: the first agent message at or after `assigned_at`, less the later
      of `assigned_at` and the buyer's first message (never below 0): the same clock start
      as the opening question's.
    - Closed hours are nobody's delay: a buyer message sent outside the shop's service
      hours starts its clock when the shop next opens (`clock_start`, from
      `routing.hours_rules.clock_start`; by default at once), if that is later.
    """
    if assigned_at is None:
        return ConversationScore(0, 0, None)
    judged = answered = 0
    waiting: list[datetime] = []  # when each unanswered buyer message's clock started
    first_buyer: datetime | None = None
    first_reply: datetime | None = None
    for said in messages:
        if said.sender == "buyer":
            if first_buyer is None:
                first_buyer = clock_start(said.at)
            waiting.append(max(clock_start(said.at), assigned_at))
        elif said.sender == "agent":
            if said.at < assigned_at:
                waiting.clear()  # answered before this assignment: not this agent's to judge
                continue
            if first_reply is None:
                first_reply = said.at
            judged += len(waiting)
            answered += sum(1 for started in waiting if said.at - started <= window)
            waiting.clear()
    judged += len(waiting)
    first_response_s = None
    if first_reply is not None:
        since = max(assigned_at, first_buyer) if first_buyer is not None else assigned_at
        first_response_s = max(0.0, (first_reply - since).total_seconds())
    return ConversationScore(judged, answered, first_response_s)


@dataclass
class Tally:
    """Sums over the conversations of one agent (or of the whole shop) in a period."""

    handled: int = 0
    judged: int = 0
    answered: int = 0
    first_responses: int = 0
    first_response_total_s: float = 0.0
    ratings: int = 0
    satisfied: int = 0
    dissatisfied: int = 0

    def add(self, score: ConversationScore, rating: int | None) -> None:
        self.handled += 1
        self.judged += score.judged
        self.answered += score.answered
        if score.first_response_s is not None:
            self.first_responses += 1
            self.first_response_total_s += score.first_response_s
        if rating is not None:
            self.ratings += 1
            self.satisfied += rating >= 4
            self.dissatisfied += rating <= 2


@dataclass(frozen=True)
class Metrics:
    reply_3min_rate: float | None
    avg_first_response_s: float | None
    satisfaction_rate: float | None
    dissatisfaction_rate: float | None
    handled: int
    payouts_cents: int
    # Quality inspection (质检): points given / points possible over scored reviews; None: none.
    qa_score: float | None = None
    qa_reviews: int = 0


# A conversation the agent ended because the buyer abused them: its rating is not the agent's.
UNRATED_CLOSE_REASONS = frozenset({"abuse"})


def rating_counts(close_reason: str | None) -> bool:
    """Whether the buyer's rating of a conversation closed for `close_reason` counts."""
    return close_reason not in UNRATED_CLOSE_REASONS


def summarize(tally: Tally, payouts_cents: int) -> Metrics:
    """Rates are fractions 0-1 (4 decimals); None where there is nothing to divide by."""
    return Metrics(
        reply_3min_rate=_rate(tally.answered, tally.judged),
        avg_first_response_s=(
            round(tally.first_response_total_s / tally.first_responses, SECONDS_DIGITS)
            if tally.first_responses
            else None
        ),
        satisfaction_rate=_rate(tally.satisfied, tally.ratings),
        dissatisfaction_rate=_rate(tally.dissatisfied, tally.ratings),
        handled=tally.handled,
        payouts_cents=payouts_cents,
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, RATE_DIGITS) if whole else None


def resolve_period(
    start_text: str | None, end_text: str | None, *, now: datetime, tz: tzinfo
) -> tuple[datetime, datetime]:
    """The half-open period [start, end) a request asks for, in UTC.

    A date means its whole day in the shop's time zone (so `to` as a date includes
    that day); a datetime without an offset is read in that zone too. Missing both:
    the last 7 days; only `from`: up to now; only `to`: the 7 days before it.
    """
    start = _bound(start_text, tz, "from", end=False)
    end = _bound(end_text, tz, "to", end=True)
    if end is None:
        end = now
    if start is None:
        start = end - DEFAULT_PERIOD
    if start >= end:
        raise BadInput(
            f"'from' ({start.isoformat()}) must be before 'to' ({end.isoformat()}).",
            code="bad_period",
        )
    if end - start > MAX_PERIOD:
        raise BadInput(f"A period is at most {MAX_PERIOD.days} days.", code="bad_period")
    return start, end


def _bound(text: str | None, tz: tzinfo, name: str, *, end: bool) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        moment = datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=tz)
        return moment.astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(
            f"Expected '{name}' as an ISO date (2026-01-31) or datetime (2026-01-31T09:00:00+08:00), "
            f"but got {text!r}.",
            code="bad_period",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)
