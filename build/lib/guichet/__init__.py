"""The ``guichet`` command: the product's entry point over bot, ingestion and eval."""
