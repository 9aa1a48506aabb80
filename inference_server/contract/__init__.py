"""Generated gRPC contract (sesa.inference.v1).

Import ``inference_server.contract.inference_pb2`` / ``inference_pb2_grpc`` directly; this
package file stays empty so that regenerating works even when the stubs are missing.
Regenerate with ``python -m inference_server.contract.generate``.
"""
