"""Scale-out and security on the real stack: a two-node OpenSearch cluster (two processes on loopback, our
plugin on both) in front of two inference-server replicas that require mutual TLS and a bearer token.

* the nodes reach both replicas over TLS with the token read from each node's KEYSTORE (no plain setting);
* ingest through both nodes into a 2-shard / 1-replica index: every document gets its vectors and BOTH
  replicas serve Encode calls (the plugin spreads its calls);
* after one replica is SIGKILLed, ingest and hybrid search on both nodes still succeed, not degraded
  (the plugin skips the dead endpoint);
* the token and the client key's password (the key file is encrypted) never show in node/cluster settings
  nor in any log;
* a client without the token, without a client certificate, with an untrusted certificate or trusting the
  wrong CA is rejected by the replicas.

The module builds its own cluster and servers (it does not use the suite's `stack`) on ports of its own,
under <state dir>/test-scale-out, and stops all of them at the end. It skips (fails under SESA_REQUIRE_E2E=1)
when the assembled distribution, Java or the plugin zip are not available.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from integration import schemas
from integration.tests.index_checks import assert_every_document_has_the_sesa_fields, require_dataset

pytestmark = pytest.mark.e2e

grpc = pytest.importorskip("grpc")

SERVER_PORTS = (50071, 50072)
METRICS_PORTS = (9481, 9482)
HTTP_BASE, TRANSPORT_BASE = 9251, 9351
# random per run, so that finding it anywhere (settings, logs) can only mean a leak
TOKEN = "scale-out-" + secrets.token_hex(12)
TOKEN_SETTING = "sesa.inference.auth_token"
# the nodes' client key is encrypted; its password, like the token, is only in the keystore
KEY_PASSWORD = "key-pw-" + secrets.token_hex(8)
KEY_PASSWORD_SETTING = "sesa.inference.tls.key_password"
ENCODE_OK = ("sesa_requests_total", {"method": "Encode", "code": "OK"})


def _require() -> bool:
    return os.environ.get("SESA_REQUIRE_E2E", "") not in ("", "0", "false")


def _unavailable(message: str):
    if _require():
        pytest.fail(message)
    pytest.skip(f"{message} (set SESA_REQUIRE_E2E=1 to fail instead)")


@dataclass
class ScaleOut:
    cluster: object  # integration.cluster.multinode.Cluster
    servers: list  # [ServerProcess, ServerProcess]
    certs: dict[str, Path]
    rogue: dict[str, Path]
    dataset: object
    figures: dict = field(default_factory=dict)

    def client(self, *urls: str):
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=list(urls or self.cluster.urls), timeout=120, retry_on_timeout=False, max_retries=0)

    def encode_ok(self, i: int) -> float:
        from integration.tests.inference_servers import metric_value

        return metric_value(self.servers[i].metrics_port, *ENCODE_OK)

    def credentials(self, ca: str = "ca.pem", client_cert: dict[str, Path] | None = None):
        pair = client_cert or {}
        return grpc.ssl_channel_credentials(
            (self.certs if ca == "ca.pem" else self.rogue)["ca.pem"].read_bytes(),
            pair["client.key"].read_bytes() if pair else None,
            pair["client.pem"].read_bytes() if pair else None,
        )


def _kill_stale_servers(folder: Path) -> None:
    """Replicas an interrupted run left behind (their command line names their ready file)."""
    from integration.cluster.node import pid_alive, pid_runs

    for pid_file in folder.glob("replica-*.pid"):
        text = pid_file.read_text().strip()
        ready = pid_file.with_suffix(".ready")
        if text.isdigit() and pid_runs(int(text), str(ready)):
            os.killpg(int(text), signal.SIGKILL)
            deadline = time.monotonic() + 20
            while pid_alive(int(text)) and time.monotonic() < deadline:
                time.sleep(0.2)
        pid_file.unlink(missing_ok=True)


def _start_replica(i: int, folder: Path, certs: dict[str, Path], sesa_home: Path):
    from integration.tests.inference_servers import ServerProcess, server_env

    env = server_env({
        "SESA_HOME": str(sesa_home),  # models and the concept space cached by `sesa up`: a start in seconds
        "SESA_SERVER_RUNTIME__ALLOW_SPINNING": "false",
        "SESA_SERVER_RUNTIME__INTRA_OP_THREADS": "1",
        "SESA_SERVER_TOKEN": TOKEN,
        "SESA_SERVER_TLS__CERT_FILE": str(certs["server.pem"]),
        "SESA_SERVER_TLS__KEY_FILE": str(certs["server.key"]),
        "SESA_SERVER_TLS__CLIENT_CA_FILE": str(certs["ca.pem"]),  # mutual TLS
    })
    log = folder / f"replica-{i + 1}.log"
    srv = ServerProcess(["--metrics-port", str(METRICS_PORTS[i])], log, env, port=SERVER_PORTS[i], timeout_s=240,
                        pid_file=log.with_suffix(".pid"))
    return srv


@pytest.fixture(scope="module")
def scale_out():
    from integration.cluster import assembly, multinode
    from integration.cluster.errors import SesaError
    from integration.cluster.java import find_java_home
    from integration.cluster.node import port_in_use
    from integration.cluster.paths import state_paths
    from integration.cluster.stack import find_plugin_zip
    from integration.cluster.templates import apply_all
    from integration.inference import InferenceClient
    from integration.tests.inference_servers import make_certs

    dataset = require_dataset("adi")
    paths = state_paths()
    root = paths.home / "test-scale-out"
    try:
        java_home = find_java_home()
        plugin_zip = find_plugin_zip(build_if_missing=False)
        # a private copy: never reinstall the plugin under the node `sesa up` runs from the shared home
        home = multinode.private_home(assembly.assemble_base(paths, java_home), root / "home", java_home,
                                      plugin_zip)
    except SesaError as exc:
        _unavailable(f"the assembled OpenSearch distribution is not available: {exc}")
    servers_dir = root / "servers"
    servers_dir.mkdir(parents=True, exist_ok=True)
    _kill_stale_servers(servers_dir)
    busy = [p for p in (*SERVER_PORTS, *METRICS_PORTS) if port_in_use(p)]
    if busy:
        _unavailable(f"ports {busy} are in use by another process; this module needs them")
    certs = make_certs(root / "certs")
    rogue = make_certs(root / "rogue-certs", ca_name="sesa-rogue-ca")
    encrypted_key = root / "certs" / "client-encrypted.key"
    subprocess.run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", str(certs["client.key"]),
                    "-out", str(encrypted_key), "-passout", f"pass:{KEY_PASSWORD}"],
                   check=True, capture_output=True, timeout=60)
    config = multinode.ClusterConfig(
        cluster_name="sesa-scale-out", state_dir=root / "cluster", nodes=2, http_base=HTTP_BASE,
        transport_base=TRANSPORT_BASE, heap="512m", name_prefix="scale",
        settings={
            "sesa.inference.endpoints": [f"127.0.0.1:{p}" for p in SERVER_PORTS],
            "sesa.inference.tls.enabled": True,
            "sesa.inference.tls.ca_file": "sesa/ca.pem",
            "sesa.inference.tls.cert_file": "sesa/client.pem",
            "sesa.inference.tls.key_file": "sesa/client.key",
        },
        keystore={TOKEN_SETTING: TOKEN, KEY_PASSWORD_SETTING: KEY_PASSWORD},
        config_files={"sesa/ca.pem": certs["ca.pem"], "sesa/client.pem": certs["client.pem"],
                      "sesa/client.key": encrypted_key},
    )
    servers: list = []
    cluster = None
    started = time.monotonic()
    try:
        # replicas and nodes start side by side: the nodes need the servers only for their first call
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(_start_replica, i, servers_dir, certs, paths.home) for i in range(2)]
            cluster_future = pool.submit(multinode.start_cluster, home, java_home, config, 240)
            errors = []
            for f in futures:
                try:
                    servers.append(f.result())
                except Exception as exc:  # noqa: BLE001 - collect, then fail with all reasons
                    errors.append(exc)
            try:
                cluster = cluster_future.result()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        if errors:
            raise errors[0]
        s = ScaleOut(cluster, servers, certs, rogue, dataset)
        s.figures["start_s"] = {"replicas": [round(x.start_seconds, 1) for x in servers],
                                "cluster": round(cluster.start_seconds, 1),
                                "all": round(time.monotonic() - started, 1)}
        with InferenceClient(servers[0].address, timeout_s=30, token=TOKEN,
                             credentials=s.credentials(client_cert=certs)) as inference:
            facts = inference.model_facts()
        apply_all(s.client(), facts)
        yield s
        (root / "figures.json").write_text(json.dumps(s.figures, indent=1))
        print(f"\nscale-out figures: {json.dumps(s.figures)}")
    finally:
        if cluster is not None:
            cluster.stop()
        for srv in servers:
            srv.stop()


def _info(url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"{url}/_plugins/sesa/info?timeout=5s", timeout=30) as resp:
        return json.loads(resp.read())


def _create_index(client, name: str) -> None:
    """Two primaries and one replica each: with two nodes, every node holds shards and every write is
    replicated to the other node."""
    client.indices.delete(index=name, ignore_unavailable=True)
    client.indices.create(index=name, body={"settings": {"number_of_shards": 2, "number_of_replicas": 1,
                                                         "auto_expand_replicas": "false"}})


def _ingest(s: ScaleOut, index: str):
    from integration.ingest import ingest

    _create_index(s.client(), index)
    started = time.monotonic()
    result = ingest(s.client(), s.dataset, index, batch_size=10, progress=False)
    took = time.monotonic() - started
    assert result.ok, f"{result.failed} documents failed: {result.failures}"
    total = sum(1 for _ in s.dataset.iter_corpus())
    assert result.indexed == total
    assert_every_document_has_the_sesa_fields(s.client(), index, total)
    health = s.client().cluster.health(index=index, wait_for_status="green")  # waits up to 30s
    assert health["status"] == "green" and health["active_shards"] == 4, health
    return result, took


def _pipeline_counts(s: ScaleOut) -> dict[str, int]:
    """Documents each node ran through the ingest pipeline (the node that receives a bulk runs it)."""
    name = schemas.conventions()["default_ingest_pipeline"]
    stats = s.client().nodes.stats(metric="ingest")["nodes"]
    return {n["name"]: n["ingest"]["pipelines"].get(name, {}).get("count", 0) for n in stats.values()}


def test_each_node_reaches_both_replicas_over_tls_with_the_keystore_token(scale_out):
    s = scale_out
    nodes = s.client().cat.nodes(format="json", h="name")
    assert sorted(n["name"] for n in nodes) == ["scale-1", "scale-2"]
    for url in s.cluster.urls:
        info = _info(url)
        assert info["serving_endpoints"] == 2, info
        for report in info["endpoints"]:
            # health is exempt from auth; Info is not: "server" (and no info_error) proves the token
            assert report["health"] == "SERVING", report
            assert "info_error" not in report and report["server"]["models"], report
    # the nodes' only source of the token is their keystore: nothing in opensearch.yml
    for node in s.cluster.nodes:
        yml = (node.config_dir / "opensearch.yml").read_text()
        assert "auth_token" not in yml and TOKEN not in yml
        assert (node.config_dir / "opensearch.keystore").is_file()


def test_ingest_through_both_nodes_spreads_encode_calls_over_both_replicas(scale_out):
    s = scale_out
    before = [s.encode_ok(i) for i in range(2)]
    pipeline_before = _pipeline_counts(s)
    result, took = _ingest(s, "sesa-scale-out-a")
    calls = [s.encode_ok(i) - before[i] for i in range(2)]
    through = {k: v - pipeline_before.get(k, 0) for k, v in _pipeline_counts(s).items()}
    s.figures["ingest_before_kill"] = {"docs": result.indexed, "seconds": round(took, 1),
                                       "encode_calls_per_replica": calls, "docs_per_node": through}
    assert all(c > 0 for c in calls), f"Encode calls per replica: {calls}: the plugin must use both"
    assert all(v > 0 for v in through.values()) and len(through) == 2, f"documents per node: {through}"


def test_ingest_and_search_keep_working_when_a_replica_dies(scale_out):
    from integration.search import search_body

    s = scale_out
    s.servers[0].kill()
    assert not s.servers[0].alive()
    before = s.encode_ok(1)
    result, took = _ingest(s, "sesa-scale-out-b")
    after_ingest = s.encode_ok(1)
    assert after_ingest > before, "the surviving replica served the ingest"

    searches = []
    pipeline = schemas.conventions()["default_search_pipeline"]
    for n, url in enumerate(s.cluster.urls):
        client = s.client(url)
        for q in ("information retrieval evaluation", "automatic indexing of documents", "library catalogues"):
            started = time.monotonic()
            res = client.search(index="sesa-scale-out-*", body=search_body(f"{q} {n}", size=5),
                                params={"search_pipeline": pipeline})
            searches.append(round((time.monotonic() - started) * 1000))
            meta = res["ext"]["sesa"]
            assert meta["degraded"] is False, meta
            assert meta["query"]["encoded"] is True, meta
            assert res["hits"]["hits"], f"no hits for {q!r} on {url}"
    for url in s.cluster.urls:
        info = _info(url)
        assert info["serving_endpoints"] == 1, info
        dead = next(r for r in info["endpoints"] if r["endpoint"] == s.servers[0].address)
        assert dead["health"] == "unreachable", dead
    s.figures["after_kill"] = {"docs_ingested": result.indexed, "ingest_seconds": round(took, 1),
                               "encode_calls_survivor": s.encode_ok(1) - before, "search_ms": searches}


def test_hybrid_hits_across_shards_and_indices_are_the_documents_their_scores_belong_to(scale_out):
    """The branches name their hits by shard and _seq_no (no _id is loaded) and the page is fetched afterwards.
    Two indices of the same documents, two shards each: the same sequence numbers exist on every shard, so a
    mix-up would show. Every hit must be unique, carry its own source, and its BM25 score and concept weights
    must be those of that document in a plain search."""
    from integration.search import search_body

    s = scale_out
    client = s.client()
    pipeline = schemas.conventions()["default_search_pipeline"]
    fields = ["title^1.0", "text^1.0"]
    for q in ("information retrieval evaluation", "automatic indexing of documents"):
        res = client.search(index="sesa-scale-out-*", body=search_body(q, size=30), params={"search_pipeline": pipeline})
        plain = client.search(index="sesa-scale-out-*", body={"size": 200, "_source": False,
                                                              "query": {"multi_match": {"query": q, "fields": fields}}})
        bm25 = {(h["_index"], h["_id"]): h["_score"] for h in plain["hits"]["hits"]}
        hits = res["hits"]["hits"]
        assert len(hits) == 30 and {h["_index"] for h in hits} == {"sesa-scale-out-a", "sesa-scale-out-b"}, hits
        keys = [(h["_index"], h["_id"]) for h in hits]
        assert len(set(keys)) == len(keys), f"a document twice: {keys}"
        shared = 0
        for h in hits:
            assert "_seq_no" not in h and "_primary_term" not in h, "asked for by the plugin, not by the user"
            assert h["_source"]["title"], h
            e = h["fields"]["_sesa"][0]
            if e["bm25"] is not None:
                assert abs(e["bm25"] - bm25[(h["_index"], h["_id"])]) <= 1e-4 * max(1.0, e["bm25"]), (h["_id"], e)
            concepts = h["_source"]["sesa_concepts"]
            for c in e["shared_concepts"]:
                assert abs(c["doc_weight"] - concepts[c["key"]]) < 1e-6, (h["_id"], c)
                shared += 1
        assert shared > 0


def test_the_token_never_shows_in_settings_or_logs(scale_out):
    s = scale_out
    client = s.client()
    exposed = {
        "_nodes/settings": client.nodes.info(metric="settings"),
        "_nodes": client.nodes.info(),
        "_cluster/settings?include_defaults": client.cluster.get_settings(include_defaults=True),
    }
    for where, body in exposed.items():
        text = json.dumps(body)
        for secret, setting in ((TOKEN, TOKEN_SETTING), (KEY_PASSWORD, KEY_PASSWORD_SETTING)):
            assert secret not in text, f"{setting} leaks through {where}"
            assert setting not in text, f"{where} lists the secure setting {setting}"
    logs = s.cluster.log_files() + [srv.log for srv in s.servers]
    assert any(p.name.endswith(".log") and p.stat().st_size > 0 for p in s.cluster.log_files())
    for secret in (TOKEN, KEY_PASSWORD):
        leaking = [str(p) for p in logs if secret.encode() in p.read_bytes()]
        assert not leaking, f"a secret is in {leaking}"
    for node in s.cluster.nodes:  # the keystore is obfuscated, not a plain copy of the secrets
        keystore = (node.config_dir / "opensearch.keystore").read_bytes()
        assert TOKEN.encode() not in keystore and KEY_PASSWORD.encode() not in keystore
        yml = (node.config_dir / "opensearch.yml").read_text()
        assert "key_password" not in yml and KEY_PASSWORD not in yml
    # and the key file the nodes use really is encrypted (the password is what opens it)
    key_text = (s.cluster.nodes[0].config_dir / "sesa" / "client.key").read_text()
    assert "ENCRYPTED PRIVATE KEY" in key_text


def test_replicas_reject_clients_without_token_or_trusted_certificate(scale_out):
    from inference_server.contract import inference_pb2 as pb
    from inference_server.contract import inference_pb2_grpc as pbg

    s = scale_out
    live = next(srv for srv in s.servers if srv.alive())

    def info(credentials, metadata) -> grpc.StatusCode:
        with grpc.secure_channel(live.address, credentials) as ch:
            try:
                pbg.InferenceStub(ch).Info(pb.InfoRequest(), timeout=10, metadata=metadata)
                return grpc.StatusCode.OK
            except grpc.RpcError as exc:
                return exc.code()

    auth = [("authorization", f"Bearer {TOKEN}")]
    trusted = s.credentials(client_cert=s.certs)
    assert info(trusted, auth) == grpc.StatusCode.OK  # the control: what the nodes present
    assert info(trusted, None) == grpc.StatusCode.UNAUTHENTICATED
    assert info(trusted, [("authorization", "Bearer not-the-token")]) == grpc.StatusCode.UNAUTHENTICATED
    # no client certificate, one from another CA, or a client that does not trust the server: no handshake
    assert info(s.credentials(), auth) == grpc.StatusCode.UNAVAILABLE
    assert info(s.credentials(client_cert=s.rogue), auth) == grpc.StatusCode.UNAVAILABLE
    assert info(s.credentials(ca="rogue", client_cert=s.certs), auth) == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(live.address) as ch:
        with pytest.raises(grpc.RpcError) as err:
            pbg.InferenceStub(ch).Info(pb.InfoRequest(), timeout=10, metadata=auth)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
