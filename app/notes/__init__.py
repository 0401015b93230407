"""Internal notes (内部备注): staff-only messages in a conversation, with @mentions."""
