"""Webhooks: signing, the retry schedule and the deliverer that reads the outbox.

The outbox itself is written by the drop actors (`sneakerd.domain.webhook_events`,
`sneakerd.store.outbox_rows`); its tables are `sneakerd.store.webhook_rows`'.
"""
