"""Wire shapes of compliance (docs/protocol-notes.md "Compliance")."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.compliance import rules


class RuleIn(BaseModel):
    word: str = Field(min_length=1, max_length=rules.MAX_WORD_CHARS)
    action: str = Field(description="block | flag")
    category: str = Field(default="custom", description="contact | promise | abuse | custom")


class RulesIn(BaseModel):
    rules: list[RuleIn] = Field(max_length=rules.MAX_SHOP_RULES)


class RulePublic(BaseModel):
    code: str = Field(description="A platform rule's code, or \"shop\" for the shop's own.")
    category: str
    action: str
    word: str = Field(description="Empty for a pattern rule (phone numbers, ids, links).")


class RulesPublic(BaseModel):
    version: int
    defaults: list[RulePublic]
    rules: list[RulePublic]


class CheckIn(BaseModel):
    body: str = Field(
        max_length=4000, description="A draft reply (a message body is at most 4,000 characters)."
    )


class HitPublic(BaseModel):
    rule: str
    category: str
    action: str
    matched: str


class CheckOut(BaseModel):
    ok: bool = Field(description="False when a block rule would refuse the message.")
    decision: str = Field(description="pass | flag | block")
    hits: list[HitPublic]


class FlagPublic(BaseModel):
    id: str
    conversation_id: str
    message_id: str
    sender: str
    sender_id: str
    rule: str
    category: str
    matched: str
    created_at: str
    reviewed_by: str | None
    reviewed_at: str | None


def rule_public(r: rules.Rule) -> RulePublic:
    return RulePublic(code=r.code, category=r.category, action=r.action, word=r.word)


def check_out(verdict: rules.Verdict) -> CheckOut:
    first = verdict.first
    return CheckOut(
        ok=verdict.blocked is None,
        decision="pass" if first is None else first.action,
        hits=[
            HitPublic(rule=h.code, category=h.category, action=h.action, matched=h.matched)
            for h in verdict.hits
        ],
    )
