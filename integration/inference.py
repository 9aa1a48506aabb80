"""A small synchronous client of the inference server for the tooling (templates, eval, benchmarks, tests).

The plugin has its own Java client; this one exists so Python tools can ask the server directly, e.g. to
compare what the cluster stored with what `Encode` returns.
"""

from __future__ import annotations

import grpc

from inference_server.contract import inference_pb2 as pb
from inference_server.contract import inference_pb2_grpc as pb_grpc

from .cluster.templates import ModelFacts


def model_ref(ref) -> str:
    return f"{ref.id}@{ref.version}"


class InferenceClient:
    def __init__(self, address: str, timeout_s: float = 30.0, token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None):
        """`credentials` (e.g. grpc.ssl_channel_credentials(ca)) selects TLS; plaintext without them."""
        self.address = address
        self.timeout_s = timeout_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        options = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=options)
        self.stub = pb_grpc.InferenceStub(self._channel)

    def __enter__(self) -> "InferenceClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def info(self) -> pb.InfoResponse:
        return self.stub.Info(pb.InfoRequest(), timeout=self.timeout_s, metadata=self._metadata)

    def encode(self, texts: list[str], kind: int = pb.TEXT_KIND_PASSAGE, **options) -> pb.EncodeResponse:
        request = pb.EncodeRequest(texts=texts, options=pb.EncodeOptions(kind=kind, **options))
        return self.stub.Encode(request, timeout=self.timeout_s, metadata=self._metadata)

    def rerank(self, query: str, passages: list[str], **options) -> pb.RerankResponse:
        request = pb.RerankRequest(query=query, passages=passages, options=pb.RerankOptions(**options))
        return self.stub.Rerank(request, timeout=self.timeout_s, metadata=self._metadata)

    def model_facts(self) -> ModelFacts:
        info = self.info()
        encoder = next((m for m in info.models if m.role == "encoder"), None)
        if encoder is None:
            raise RuntimeError(f"the inference server at {self.address} reports no encoder model")
        # The concept model is reported by Encode (it may differ from the encoder); ask once.
        probe = self.encode(["probe"], kind=pb.TEXT_KIND_QUERY)
        return ModelFacts(
            dense_dimension=encoder.dimension,
            dense_model=model_ref(probe.dense_model),
            concept_model=model_ref(probe.concept_model),
        )
