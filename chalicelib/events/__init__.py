"""Events out: what a committed change means to other apps, and getting it to them.

    mapping.py          a stream record → the events it means (docs/events.md); EventBridge detail
    webhooks.py         a user's webhooks: registration, secrets, delivery history
    webhook_schemas.py  pydantic models of the /webhooks routes
    delivery.py         fan-out to one queue message per (webhook, event), one signed POST each,
                        retried through the queue; a slow endpoint waits in its own lane
    outbound.py         HTTP to URLs users give us, without reaching our own network (SSRF)
    store.py            the data access of webhooks, their counts, secrets, deliveries and slots, by name
"""
