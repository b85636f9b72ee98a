"""One module per corpus or corpus family, each registering its loader with
``sercore.data.registry.register_dataset``; every module here is imported on first use of the registry."""
