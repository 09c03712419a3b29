"""Helpers for testing projects that use djenga: a real Redis/Valkey server process."""

from .redis_server import RedisServer, find_redis_server

__all__ = ["RedisServer", "find_redis_server"]
