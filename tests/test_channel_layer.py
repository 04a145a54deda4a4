"""config/channel_layer.py on the real Redis: group_send reaches every member but the one it skips."""

from __future__ import annotations

import asyncio
import uuid

from django.conf import settings

from config.channel_layer import RedisChannelLayer


def _layer() -> RedisChannelLayer:
    config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"])
    config["prefix"] = f"test-layer-{uuid.uuid4().hex[:8]}:"
    return RedisChannelLayer(**config)


async def _received(layer: RedisChannelLayer, channel: str) -> dict | None:
    try:
        return await asyncio.wait_for(layer.receive(channel), 0.5)
    except TimeoutError:
        return None


def test_group_send_reaches_every_member_but_the_skipped_one_and_nothing_when_it_is_alone() -> None:
    async def scenario() -> tuple[list, list, list]:
        layer = _layer()
        try:
            sender, other = await layer.new_channel(), await layer.new_channel()
            await layer.group_add("conversation.x", sender)
            await layer.group_add("conversation.x", other)
            await layer.group_send("conversation.x", {"type": "conversation.frame", "frame": {"n": 1}})
            both = [await _received(layer, sender), await _received(layer, other)]
            await layer.group_send("conversation.x", {"type": "conversation.frame", "frame": {"n": 2}, "skip": sender})
            skipped = [await _received(layer, other), await _received(layer, sender)]
            await layer.group_discard("conversation.x", other)
            await layer.group_send("conversation.x", {"type": "conversation.frame", "frame": {"n": 3}, "skip": sender})
            alone = [await _received(layer, sender)]
            return both, skipped, alone
        finally:
            await layer.flush()

    both, skipped, alone = asyncio.run(scenario())
    assert [m["frame"]["n"] for m in both] == [1, 1]
    assert skipped[0]["frame"]["n"] == 2 and skipped[1] is None
    assert alone == [None]


def test_a_channel_at_capacity_drops_the_message_as_upstream_does() -> None:
    async def scenario() -> list:
        layer = _layer()
        layer.capacity = 1
        try:
            channel = await layer.new_channel()
            await layer.group_add("g", channel)
            for n in range(3):
                await layer.group_send("g", {"type": "x", "n": n})
            return [await _received(layer, channel), await _received(layer, channel)]
        finally:
            await layer.flush()

    first, second = asyncio.run(scenario())
    assert first["n"] == 0 and second is None
