"""Conversations, messages and turn traces; the websocket consumer; the turn loop; responders; escalation; identity;
the handoff console.
"""
