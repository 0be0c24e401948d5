"""Typed application keys: every shared resource of the aiohttp app, named once."""

from __future__ import annotations

from aiohttp import web

from sneakerd.actors.registry import Registry
from sneakerd.actors.sink import EventSink
from sneakerd.clock import Clock
from sneakerd.cluster.node import ClusterNode
from sneakerd.config import Settings
from sneakerd.service import DropService
from sneakerd.store import Store
from sneakerd.web.auth import Tokens
from sneakerd.web.hub import Hub
from sneakerd.web.idempotency import Idempotency
from sneakerd.web.known_users import KnownUsers
from sneakerd.web.metrics import Metrics
from sneakerd.web.ratelimit import Limiter
from sneakerd.web.read_gate import ReadGate
from sneakerd.webhooks.deliverer import Deliverer

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
STORE = web.AppKey("store", Store)
REGISTRY = web.AppKey("registry", Registry)
SERVICE = web.AppKey("service", DropService)
TOKENS = web.AppKey("tokens", Tokens)
KNOWN_USERS = web.AppKey("known_users", KnownUsers)
AUTH_LIMIT = web.AppKey("auth_limit", Limiter)
RESERVE_LIMIT = web.AppKey("reserve_limit", Limiter)
IDEMPOTENCY = web.AppKey("idempotency", Idempotency)
METRICS = web.AppKey("metrics", Metrics)
HUB = web.AppKey("hub", Hub)
READ_GATE = web.AppKey("read_gate", ReadGate)
FEEDS: web.AppKey[list[EventSink]] = web.AppKey("feeds")
"""Live feeds beside the hub that hear every committed batch (the Socket.IO feed): add to it
while the app is built; `web.fanout` publishes to each."""
DELIVERER = web.AppKey("deliverer", Deliverer)
NODE: web.AppKey[ClusterNode | None] = web.AppKey("node")
"""This node's cluster parts (peers, bus, Redis limits) when REDIS_URL is set; else None."""
