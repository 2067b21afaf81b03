"""The ports services depend on. Storage adapters implement them; services never import
storage. Each port has real adapters (``storage/``) and an in-memory one for unit tests,
all held to one contract suite.

- ``blobs``: the content-addressed blob store and the audit signing key;
- ``unit_of_work``: the metadata store and its transaction, whose rows are reached by
  context: ``registry`` (models, versions, aliases), ``audit``, ``users``, ``recipes``,
  ``tracking`` (runs, datasets), ``governance`` (policies, evidence, retention).

Each name is imported from its module (``modelkeep.ports.blobs``, ``...unit_of_work``):
the package itself imports nothing, so a client that only needs ``Progress`` does not
load the metadata ports and the domain records behind them.
"""
