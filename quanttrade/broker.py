"""The Redis broker transport, made to survive a broker outage with tasks in flight (below), and
to publish without building a Redis client each time (``Channel._create_client``).

kombu 5.7.0 (the newest release) kills the Celery worker when Redis drops while tasks are
delivered but not yet acknowledged (``acks_late``): ``Unrecoverable error:
AttributeError("'NoneType' object has no attribute 'hostname'")``. The sequence:

1. the consumer sees the connection error and calls ``Consumer.on_connection_error_after_connected``
   (celery/worker/consumer/consumer.py:476), which runs ``Connection.collect()``;
2. ``collect()`` closes the transport's channels, last first (``close_connection``,
   kombu/transport/virtual/base.py:988-997). The first close that cannot reach Redis raises
   (redis.py:1894, ``_brpop_read``; the caller ignores it) and ends that loop: the other
   channels stay open. ``collect()`` then ends in ``_do_close_transport()``
   (kombu/connection.py:450 → 429), which sets ``transport.client = None``;
3. the bootsteps close those channels again (``Tasks.shutdown``: ``ignore_errors(c,
   c.task_consumer.close)``, celery/worker/consumer/tasks.py:96). ``Channel.close``
   (kombu/transport/redis.py:1890) drops its connection pools (``_disconnect_pools``) and the
   virtual ``Channel.close`` → ``QoS.restore_unacked_once`` (kombu/transport/virtual/base.py:
   277-300) — only when messages are delivered and unacknowledged, i.e. tasks in flight —
   calls ``QoS.restore_unacked`` (redis.py:493) → ``conn_or_acquire`` → ``_create_client`` →
   ``Channel.pool`` → ``_get_pool`` (redis.py:2064) → ``_connparams`` (redis.py:1957-1959), which
   reads ``self.connection.client.hostname`` of the now client-less transport;
4. the AttributeError is not a connection error, so ``ignore_errors`` around the close does not
   swallow it and the worker's start loop treats it as unrecoverable: the process exits.

The channel here reports that case as what it is — a lost broker connection — so the consumer
ignores it and reconnects. The messages it could not hand back stay in Redis's unacked set and
are restored after the visibility timeout; running them again is harmless (execution claims
each order atomically), and the orders themselves finish in the tasks already running.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    _client_for_pool: tuple[Any, Any] | None = None  # (pool, client)

    def _connparams(self, asynchronous: bool = False) -> Any:
        if getattr(self.connection, "client", None) is None:
            raise RedisConnectionError("the broker connection was closed before this channel")
        return super()._connparams(asynchronous=asynchronous)

    def _create_client(self, asynchronous: bool = False) -> Any:
        """One ``redis.Redis`` per connection pool instead of a new one per call.

        kombu builds a client for every publish (``conn_or_acquire`` → ``_create_client``), and
        redis-py's constructor copies its ~170 response callbacks each time: a third of a
        publish's CPU, on the webhook's path to the worker. A client holds no connection of its
        own (it takes one from the pool per command) and is thread-safe, as quanttrade/cache.py
        relies on for the cache. A closed channel drops its pool (``_disconnect_pools``): the
        next call builds a client for the new one."""
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        cached = self._client_for_pool
        if cached is not None and cached[0] is pool:
            return cached[1]
        client = super()._create_client()
        self._client_for_pool = (pool, client)
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
