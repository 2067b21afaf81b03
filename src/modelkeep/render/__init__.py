"""Documents rendered for people: model cards and governance reports as Markdown or HTML.

The domain says what a document holds (``modelkeep.domain.cards``); this package says how
it looks. It imports the domain only, so the services, the API, the CLI and later the
web UI render through it alike.
"""
