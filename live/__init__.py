"""The realtime layer: the channel-layer bus, the per-process hub, the ``/ws`` consumer and its
topics, and the realtime state store. Prices, orders and webhooks publish through it; it
imports none of them (a topic family is registered by the app that owns it)."""
