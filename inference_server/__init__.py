"""SESA inference server: dense embeddings, SESA concept vectors and reranking over gRPC.

The transport (``service``) is thin; batching (``batching``), model runtimes (``runtime``),
the concept head (``concept_head``) and configuration (``config``) are separate modules so
each can be tested without a network.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("opensearch-sesa")
except _metadata.PackageNotFoundError:  # running from a source checkout
    __version__ = "0.1.0"
