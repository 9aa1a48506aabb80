from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TextKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEXT_KIND_UNSPECIFIED: _ClassVar[TextKind]
    TEXT_KIND_QUERY: _ClassVar[TextKind]
    TEXT_KIND_PASSAGE: _ClassVar[TextKind]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_INTERACTIVE: _ClassVar[Priority]
    PRIORITY_BULK: _ClassVar[Priority]
TEXT_KIND_UNSPECIFIED: TextKind
TEXT_KIND_QUERY: TextKind
TEXT_KIND_PASSAGE: TextKind
PRIORITY_UNSPECIFIED: Priority
PRIORITY_INTERACTIVE: Priority
PRIORITY_BULK: Priority

class EncodeOptions(_message.Message):
    __slots__ = ("kind", "top_k_concepts", "top_labels", "skip_dense", "skip_concepts", "priority", "concept_space", "chunking")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOP_K_CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    TOP_LABELS_FIELD_NUMBER: _ClassVar[int]
    SKIP_DENSE_FIELD_NUMBER: _ClassVar[int]
    SKIP_CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_SPACE_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    kind: TextKind
    top_k_concepts: int
    top_labels: int
    skip_dense: bool
    skip_concepts: bool
    priority: Priority
    concept_space: str
    chunking: Chunking
    def __init__(self, kind: _Optional[_Union[TextKind, str]] = ..., top_k_concepts: _Optional[int] = ..., top_labels: _Optional[int] = ..., skip_dense: _Optional[bool] = ..., skip_concepts: _Optional[bool] = ..., priority: _Optional[_Union[Priority, str]] = ..., concept_space: _Optional[str] = ..., chunking: _Optional[_Union[Chunking, _Mapping]] = ...) -> None: ...

class Chunking(_message.Message):
    __slots__ = ("window_tokens", "overlap_tokens", "max_windows")
    WINDOW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    window_tokens: int
    overlap_tokens: int
    max_windows: int
    def __init__(self, window_tokens: _Optional[int] = ..., overlap_tokens: _Optional[int] = ..., max_windows: _Optional[int] = ...) -> None: ...

class Window(_message.Message):
    __slots__ = ("dense", "start_char", "end_char", "num_tokens")
    DENSE_FIELD_NUMBER: _ClassVar[int]
    START_CHAR_FIELD_NUMBER: _ClassVar[int]
    END_CHAR_FIELD_NUMBER: _ClassVar[int]
    NUM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    dense: _containers.RepeatedScalarFieldContainer[float]
    start_char: int
    end_char: int
    num_tokens: int
    def __init__(self, dense: _Optional[_Iterable[float]] = ..., start_char: _Optional[int] = ..., end_char: _Optional[int] = ..., num_tokens: _Optional[int] = ...) -> None: ...

class Timing(_message.Message):
    __slots__ = ("queue_ms", "compute_ms", "tokenize_ms", "total_ms", "priority")
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENIZE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    queue_ms: float
    compute_ms: float
    tokenize_ms: float
    total_ms: float
    priority: str
    def __init__(self, queue_ms: _Optional[float] = ..., compute_ms: _Optional[float] = ..., tokenize_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., priority: _Optional[str] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("texts", "options")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    options: EncodeOptions
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[EncodeOptions, _Mapping]] = ...) -> None: ...

class Concept(_message.Message):
    __slots__ = ("key", "label", "weight")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    key: str
    label: str
    weight: float
    def __init__(self, key: _Optional[str] = ..., label: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("dense", "concepts", "top_labels", "truncated", "num_tokens", "error", "concept_domain", "windows", "coverage")
    DENSE_FIELD_NUMBER: _ClassVar[int]
    CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    TOP_LABELS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NUM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    dense: _containers.RepeatedScalarFieldContainer[float]
    concepts: _containers.RepeatedCompositeFieldContainer[Concept]
    top_labels: _containers.RepeatedScalarFieldContainer[str]
    truncated: bool
    num_tokens: int
    error: ItemError
    concept_domain: DomainCheck
    windows: _containers.RepeatedCompositeFieldContainer[Window]
    coverage: float
    def __init__(self, dense: _Optional[_Iterable[float]] = ..., concepts: _Optional[_Iterable[_Union[Concept, _Mapping]]] = ..., top_labels: _Optional[_Iterable[str]] = ..., truncated: _Optional[bool] = ..., num_tokens: _Optional[int] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ..., concept_domain: _Optional[_Union[DomainCheck, _Mapping]] = ..., windows: _Optional[_Iterable[_Union[Window, _Mapping]]] = ..., coverage: _Optional[float] = ...) -> None: ...

class ModelRef(_message.Message):
    __slots__ = ("id", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: str
    def __init__(self, id: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class EncodeResponse(_message.Message):
    __slots__ = ("embeddings", "dense_model", "concept_model", "timing")
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    DENSE_MODEL_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    dense_model: ModelRef
    concept_model: ModelRef
    timing: Timing
    def __init__(self, embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., dense_model: _Optional[_Union[ModelRef, _Mapping]] = ..., concept_model: _Optional[_Union[ModelRef, _Mapping]] = ..., timing: _Optional[_Union[Timing, _Mapping]] = ...) -> None: ...

class RerankOptions(_message.Message):
    __slots__ = ("chunk_long_passages", "max_chunks", "skip_out_of_domain", "priority")
    CHUNK_LONG_PASSAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    SKIP_OUT_OF_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    chunk_long_passages: bool
    max_chunks: int
    skip_out_of_domain: bool
    priority: Priority
    def __init__(self, chunk_long_passages: _Optional[bool] = ..., max_chunks: _Optional[int] = ..., skip_out_of_domain: _Optional[bool] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class RerankRequest(_message.Message):
    __slots__ = ("query", "passages", "options")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    query: str
    passages: _containers.RepeatedScalarFieldContainer[str]
    options: RerankOptions
    def __init__(self, query: _Optional[str] = ..., passages: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[RerankOptions, _Mapping]] = ...) -> None: ...

class PassageScore(_message.Message):
    __slots__ = ("score", "truncated", "chunks", "error")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    score: float
    truncated: bool
    chunks: int
    error: ItemError
    def __init__(self, score: _Optional[float] = ..., truncated: _Optional[bool] = ..., chunks: _Optional[int] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class DomainCheck(_message.Message):
    __slots__ = ("similarity", "threshold", "in_domain", "reference")
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    IN_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    similarity: float
    threshold: float
    in_domain: bool
    reference: str
    def __init__(self, similarity: _Optional[float] = ..., threshold: _Optional[float] = ..., in_domain: _Optional[bool] = ..., reference: _Optional[str] = ...) -> None: ...

class RerankResponse(_message.Message):
    __slots__ = ("scores", "model", "domain", "timing")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedCompositeFieldContainer[PassageScore]
    model: ModelRef
    domain: DomainCheck
    timing: Timing
    def __init__(self, scores: _Optional[_Iterable[_Union[PassageScore, _Mapping]]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., domain: _Optional[_Union[DomainCheck, _Mapping]] = ..., timing: _Optional[_Union[Timing, _Mapping]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("role", "ref", "dimension", "precision", "max_sequence_length", "source", "engine", "choice_reason")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQUENCE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    CHOICE_REASON_FIELD_NUMBER: _ClassVar[int]
    role: str
    ref: ModelRef
    dimension: int
    precision: str
    max_sequence_length: int
    source: str
    engine: str
    choice_reason: str
    def __init__(self, role: _Optional[str] = ..., ref: _Optional[_Union[ModelRef, _Mapping]] = ..., dimension: _Optional[int] = ..., precision: _Optional[str] = ..., max_sequence_length: _Optional[int] = ..., source: _Optional[str] = ..., engine: _Optional[str] = ..., choice_reason: _Optional[str] = ...) -> None: ...

class ConceptSpaceInfo(_message.Message):
    __slots__ = ("name", "size", "version", "default_top_k")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TOP_K_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    version: str
    default_top_k: int
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., version: _Optional[str] = ..., default_top_k: _Optional[int] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_texts_per_call", "max_text_bytes", "max_batch_tokens", "max_queue_size", "query_max_tokens", "passage_max_tokens")
    MAX_TEXTS_PER_CALL_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUERY_MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PASSAGE_MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    max_texts_per_call: int
    max_text_bytes: int
    max_batch_tokens: int
    max_queue_size: int
    query_max_tokens: int
    passage_max_tokens: int
    def __init__(self, max_texts_per_call: _Optional[int] = ..., max_text_bytes: _Optional[int] = ..., max_batch_tokens: _Optional[int] = ..., max_queue_size: _Optional[int] = ..., query_max_tokens: _Optional[int] = ..., passage_max_tokens: _Optional[int] = ...) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("server_version", "models", "concept_space", "device", "providers", "limits", "concept_spaces", "cpu_features")
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_SPACE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_SPACES_FIELD_NUMBER: _ClassVar[int]
    CPU_FEATURES_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    concept_space: ConceptSpaceInfo
    device: str
    providers: _containers.RepeatedScalarFieldContainer[str]
    limits: Limits
    concept_spaces: _containers.RepeatedCompositeFieldContainer[ConceptSpaceInfo]
    cpu_features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, server_version: _Optional[str] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., concept_space: _Optional[_Union[ConceptSpaceInfo, _Mapping]] = ..., device: _Optional[str] = ..., providers: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., concept_spaces: _Optional[_Iterable[_Union[ConceptSpaceInfo, _Mapping]]] = ..., cpu_features: _Optional[_Iterable[str]] = ...) -> None: ...
