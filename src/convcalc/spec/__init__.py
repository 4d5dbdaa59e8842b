"""Reading specs: YAML/JSON text (or command-line flags) into a `Network`."""
