"""The plain Redis key layout for serving state.

Every key tillflow reads or writes outside Feast is built here; model features live in the
Feast online store (Feast's own layout, featurestore/layout.py), never under these keys.
Keys share one prefix (``TILLFLOW_REDIS_PREFIX``, default ``tillflow:``) so one Redis can
hold several shops.

On a Redis Cluster a key lives in the hash slot of its *hash tag*, the part between its first
``{`` and the next ``}``. The keys of one entity carry the entity's id as their tag, so one
product's keys (price, history, pricing state, neighbours, graph copy) sit on one master, and
so do one shopper's and one flow lineage's price bookkeeping, which is updated in a transaction
(a cluster runs a transaction only within one slot). Keys shared by every entity (current
prices, catalogue, popularity, counters, streams) have no tag: each is one key, in its own slot.
Pub/sub channels need none: a cluster delivers every message to the subscribers of every node.

>>> keys = RedisKeys("tillflow:")
>>> keys.current_prices
'tillflow:prices:current'
>>> keys.price("SKU-00042")
'tillflow:price:{SKU-00042}'
>>> keys.price_history("SKU-00042")
'tillflow:price-history:{SKU-00042}'
"""

from __future__ import annotations

from dataclasses import dataclass


def tag(value: str) -> str:
    """``value`` as a hash tag: the keys that carry the same tag share a Redis Cluster slot.

    >>> tag("SKU-00042")
    '{SKU-00042}'
    """
    return "{" + value + "}"


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Builds the Redis keys and pub/sub channels of one tillflow deployment."""

    prefix: str = "tillflow:"

    @property
    def current_prices(self) -> str:
        """Hash ``sku -> price`` (decimal string) of every published price; read in bulk."""
        return f"{self.prefix}prices:current"

    def price(self, sku: str) -> str:
        """Hash with the details of one product's current price.

        Fields: ``price``, ``previous_price``, ``updated_at`` (ISO-8601, UTC), ``reason``,
        ``model_version``.
        """
        return f"{self.prefix}price:{tag(sku)}"

    def price_sequences(self, lineage: str) -> str:
        """Hash ``sku -> sequence`` of the last price change published to the price-updates
        topic by the flow whose recovery state is ``lineage``; replaying after a crash, it
        skips changes at or below it. (A flow started from fresh state has a new lineage.)
        Tagged with the lineage, like :meth:`price_pending` and :meth:`price_produced`: they
        change in one transaction."""
        return f"{self.prefix}prices:sequence:{tag(lineage)}"

    def price_pending(self, lineage: str) -> str:
        """Hash ``worker -> epoch milliseconds`` at which each flow worker began producing a
        batch of price changes that Redis does not yet record (the field deleted once it
        does)."""
        return f"{self.prefix}prices:pending:{tag(lineage)}"

    def price_produced(self, lineage: str) -> str:
        """Hash ``sku -> sequence``: changes found in the price-updates topic after a crash
        that Redis did not record (the field deleted once a replay records them)."""
        return f"{self.prefix}prices:produced:{tag(lineage)}"

    @property
    def price_channel(self) -> str:
        """Pub/sub channel carrying every price change as a ``PriceUpdate`` JSON."""
        return f"{self.prefix}channel:prices"

    def price_history(self, sku: str) -> str:
        """Sorted set of ``PriceUpdate`` JSON scored by event time (epoch seconds)."""
        return f"{self.prefix}price-history:{tag(sku)}"

    @property
    def catalogue(self) -> str:
        """Hash ``sku -> CatalogueItem JSON``: list prices, unit costs, categories."""
        return f"{self.prefix}catalogue"

    @property
    def catalogue_channel(self) -> str:
        """Pub/sub channel announcing each write to :attr:`catalogue` (the message is the
        number of products written): the API then reads the catalogue again."""
        return f"{self.prefix}channel:catalogue"

    def sku_features(self, sku: str) -> str:
        """Hash of the sku's pricing state for serving: the ``SKU_FEATURES`` whose store is
        ``"redis"`` (published price, elasticity, its std, observations). The model features
        of the sku are in Feast (feature view ``sku_features``)."""
        return f"{self.prefix}features:sku:{tag(sku)}"

    def user_features(self, user_id: str) -> str:
        """Not written any more: every shopper feature is a model feature, in Feast (feature
        view ``user_features``). Left in place for readers that still import it."""
        return f"{self.prefix}features:user:{tag(user_id)}"

    def neighbours(self, sku: str) -> str:
        """Hash ``sku -> score`` of the items most often co-interacted with ``sku``."""
        return f"{self.prefix}reco:neighbours:{tag(sku)}"

    @property
    def popularity(self) -> str:
        """Sorted set of skus scored by popularity (the fallback list): interactions decayed
        in event time, as the log score of ``online_models.popularity``. (Named apart from
        the decayed counts that ``reco:popular`` held before, which do not compare with it.)"""
        return f"{self.prefix}reco:popularity"

    def category_popularity(self, category: str) -> str:
        """Sorted set of one category's skus scored like :attr:`popularity`."""
        return f"{self.prefix}reco:popularity:{category}"

    def recommendations(self, user_id: str) -> str:
        """String: JSON ``schemas.serving.StoredShopper`` (what the lists come from)."""
        return f"{self.prefix}reco:user:{tag(user_id)}"

    def recommendation_channel(self, user_id: str) -> str:
        """Pub/sub channel with the shopper's new list each time it changes."""
        return f"{self.prefix}channel:reco:{user_id}"

    def graph_related(self, namespace: str, sku: str) -> str:
        """String: JSON ``{"sku", "items": [{"sku", "category", "weight", "lift"}...]}``, the
        product's strongest co-purchases in graph ``namespace`` (written by each graph load)."""
        return f"{self.prefix}graph:related:{namespace}:{tag(sku)}"

    @property
    def flow_stats(self) -> str:
        """Hash of the flows' counters (events in, dead-lettered, duplicates, late, …)."""
        return f"{self.prefix}flow:stats"

    @property
    def drift_events(self) -> str:
        """Stream (XADD) of drift detections that the batch scheduler reacts to."""
        return f"{self.prefix}drift"

    @property
    def producer_clients(self) -> str:
        """Hash ``client_id -> ProducerClient JSON``: who may write which input topics
        (secrets stored as argon2 hashes; ``tillflow producers`` manages them)."""
        return f"{self.prefix}auth:producers"

    @property
    def marker(self) -> str:
        """String written when serving state is complete (no TTL, never evicted); missing,
        it means Redis lost its data and the serving state must be rebuilt (flows/rebuild.py).
        """
        return f"{self.prefix}redis:marker"

    # --- batch jobs (batch/runs.py, batch/scheduler.py) -------------------------------------

    @property
    def job_runs(self) -> str:
        """List of finished job runs as JSON, newest first (capped; the admin page reads it)."""
        return f"{self.prefix}batch:runs"

    def job_lock(self, job: str) -> str:
        """String holding the token of the one process running ``job`` (expires by itself)."""
        return f"{self.prefix}batch:lock:{job}"

    @property
    def job_requests(self) -> str:
        """Stream (XADD) of ``{"job": name}`` requests to run a job now; the scheduler reads it."""
        return f"{self.prefix}batch:requests"

    @property
    def scheduler_state(self) -> str:
        """Hash of the scheduler's cursors (last drift and request ids handled, last runs)."""
        return f"{self.prefix}batch:scheduler"

    # --- model governance (batch/audit.py, batch/skew.py) -----------------------------------

    @property
    def governance(self) -> str:
        """Hash of the latest audit and skew summaries (``schemas.governance``), by check."""
        return f"{self.prefix}governance"
