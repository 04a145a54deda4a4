"""The handoff console: support agents see who is waiting, read what the AI did, take conversations over, reply,
hand them back, close them, and decide the approvals a conversation is waiting on (docs/agent/console.md)."""
