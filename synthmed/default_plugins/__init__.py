"""Built-in plugins. Each module here is listed in `synthmed.plugins.DEFAULT_PLUGINS`."""
