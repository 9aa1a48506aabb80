"""The embedded default: assemble, start and stop a local OpenSearch node and the inference server."""
