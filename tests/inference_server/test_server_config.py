"""Config: precedence, validation messages, secrets."""

from __future__ import annotations

import pytest

from inference_server.config import ConfigError, dump_yaml, load_config


def test_defaults():
    c = load_config(environ={})
    assert (c.host, c.port) == ("127.0.0.1", 50051)
    assert (c.metrics.host, c.metrics.port) == ("127.0.0.1", 9464)
    assert c.models.encoder is None and c.models.reranker is None and c.models.concept_space == "esco-skills"
    assert c.batching.max_batch_tokens == 1024 and 2 <= c.batching.max_wait_ms <= 5
    assert c.limits.max_texts_per_call == 2048 and c.limits.max_text_bytes == 1_048_576
    assert (c.limits.query_max_tokens, c.limits.passage_max_tokens) == (64, 256)
    assert c.runtime.device == "auto" and c.tls.enabled is False


def test_precedence_file_env_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("port: 6000\nbatching:\n  max_batch_size: 8\n  max_wait_ms: 4\nmodels:\n  concept_space: none\n")
    env = {"SESA_SERVER_BATCHING__MAX_BATCH_SIZE": "16", "SESA_SERVER_LOGGING__FORMAT": "json"}
    c = load_config(f, overrides={"port": 7000, "batching.max_wait_ms": None}, environ=env)
    assert c.port == 7000  # CLI beats file
    assert c.batching.max_batch_size == 16  # env beats file
    assert c.batching.max_wait_ms == 4  # None override ignored
    assert c.logging.format == "json" and c.models.concept_space is None


def test_config_file_from_env(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("port: 6001\n")
    assert load_config(environ={"SESA_SERVER_CONFIG": str(f)}).port == 6001


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"SESA_SERVER_BATCHING__MAX_BATCH_SIZE": "0"},
         "batching.max_batch_size: Input should be greater than or equal to 1 (got 0) "
         "[from env SESA_SERVER_BATCHING__MAX_BATCH_SIZE]"),
        ({"SESA_SERVER_BATCHNG__MAX_BATCH_SIZE": "4"}, "batchng: unknown setting [from env SESA_SERVER_BATCHNG__"),
        ({"SESA_SERVER_RUNTIME__DEVICE": "tpu"}, "runtime.device: Input should be 'auto', 'cpu' or 'cuda'"),
        ({"SESA_SERVER_PORT": "70000"}, "port: Input should be less than or equal to 65535"),
        ({"SESA_SERVER_BATCHING__MAX_QUEUE_SIZE": "100"}, "max_queue_size (100) must be >= limits.max_texts_per_call"),
        ({"SESA_SERVER_BATCHING__MAX_PADDING_RATIO": "0.5"}, "batching.max_padding_ratio: Input should be greater"),
        ({"SESA_SERVER_TLS__CERT_FILE": "/nonexistent.pem"}, "cert_file and tls.key_file must be set together"),
        ({"SESA_SERVER_TLS__CERT_FILE": "/nonexistent.pem", "SESA_SERVER_TLS__KEY_FILE": "/nonexistent.key"},
         "file not found: /nonexistent.pem"),
        ({"SESA_SERVER_LIMITS__PASSAGE_MAX_TOKENS": "9000"}, "limits.passage_max_tokens: Input should be less"),
    ],
)
def test_validation_errors_are_one_clear_line(env, expected):
    with pytest.raises(ConfigError) as ei:
        load_config(environ=env)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("invalid config")
    assert expected in msg


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("port: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, environ={})
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(lst, environ={})
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("batching:\n  max_batch_sise: 3\n")
    with pytest.raises(ConfigError, match=r"in .*unknown.yaml: batching.max_batch_sise: unknown setting"):
        load_config(unknown, environ={})


def test_token_sources_and_redaction(tmp_path, monkeypatch):
    monkeypatch.delenv("SESA_SERVER_TOKEN", raising=False)
    assert load_config(environ={}).auth.resolve_token() is None
    monkeypatch.setenv("SESA_SERVER_TOKEN", "from-env")
    c = load_config()  # the token variable is reserved, not an unknown setting
    assert c.auth.resolve_token() == "from-env"
    tf = tmp_path / "tok"
    tf.write_text("from-file\n")
    c = load_config(overrides={"auth.token_file": str(tf)})
    assert c.auth.resolve_token() == "from-file"
    c = load_config(overrides={"auth.token": "inline-secret"})
    shown = dump_yaml(c)
    assert "inline-secret" not in shown and "from-env" not in shown and "***" in shown
    assert "inline-secret" not in repr(c)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(overrides={"auth.token_file": str(empty)}).auth.resolve_token()
