package org.sesa.opensearch.settings;

import org.opensearch.common.settings.SecureSetting;
import org.opensearch.common.settings.Setting;
import org.opensearch.common.settings.Setting.Property;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.common.util.concurrent.OpenSearchExecutors;
import org.opensearch.core.common.settings.SecureString;
import org.opensearch.threadpool.ExecutorBuilder;
import org.opensearch.threadpool.ScalingExecutorBuilder;
import org.sesa.opensearch.inference.Endpoint;
import org.sesa.opensearch.util.SesaConventions;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Node settings of the plugin. Every value is validated when the node starts (or, for dynamic ones, when
 * {@code _cluster/settings} changes them), with messages that name the setting.
 */
public final class SesaSettings {

    private SesaSettings() {}

    public static final String PREFIX = "sesa.inference.";

    /** Inference servers, used round-robin; a failing one is skipped for a while. Static: restart to change. */
    public static final Setting<List<Endpoint>> ENDPOINTS = Setting.listSetting(
        PREFIX + "endpoints",
        List.of(SesaConventions.get().defaultInferenceEndpoint()),
        Endpoint::parse,
        SesaSettings::validateEndpoints,
        Property.NodeScope
    );

    /** Deadline of one model call including its retries; processors may override it with their {@code timeout}. */
    public static final Setting<TimeValue> TIMEOUT = Setting.timeSetting(
        PREFIX + "timeout",
        TimeValue.timeValueSeconds(10),
        TimeValue.timeValueMillis(1),
        Property.NodeScope,
        Property.Dynamic
    );

    /**
     * Deadline of one Encode call of an ingest processor that sets no {@code timeout} of its own (the sesa_text
     * system processor, a {@code sesa_encode} without one). Longer than {@link #TIMEOUT}: the batches of concurrent
     * bulks queue behind each other on the server, and a bulk document that misses it fails instead of waiting.
     */
    public static final Setting<TimeValue> INGEST_TIMEOUT = Setting.timeSetting(
        PREFIX + "ingest_timeout",
        TimeValue.timeValueSeconds(60),
        TimeValue.timeValueMillis(1),
        Property.NodeScope,
        Property.Dynamic
    );

    /** Extra attempts after UNAVAILABLE or RESOURCE_EXHAUSTED, as long as the deadline allows. */
    public static final Setting<Integer> MAX_RETRIES = Setting.intSetting(PREFIX + "max_retries", 3, 0, 10, Property.NodeScope, Property.Dynamic);

    public static final Setting<Boolean> TLS_ENABLED = Setting.boolSetting(PREFIX + "tls.enabled", false, Property.NodeScope);

    /** PEM CA bundle to trust, relative to the node's config directory; empty means the JDK trust store. */
    public static final Setting<String> TLS_CA_FILE = Setting.simpleString(PREFIX + "tls.ca_file", Property.NodeScope);

    /** PEM client certificate chain for mutual TLS, relative to the config directory (needs key_file). */
    public static final Setting<String> TLS_CERT_FILE = Setting.simpleString(PREFIX + "tls.cert_file", Property.NodeScope);

    /** PEM PKCS#8 private key for mutual TLS, relative to the config directory (needs cert_file). */
    public static final Setting<String> TLS_KEY_FILE = Setting.simpleString(PREFIX + "tls.key_file", Property.NodeScope);

    /** Password of an encrypted {@code key_file} (PKCS#8); keystore only, like the token. */
    public static final Setting<SecureString> TLS_KEY_PASSWORD = SecureSetting.secureString(PREFIX + "tls.key_password", null);

    /** Bearer token sent as {@code authorization} metadata; lives in the OpenSearch keystore, never in opensearch.yml. */
    public static final Setting<SecureString> AUTH_TOKEN = SecureSetting.secureString(PREFIX + "auth_token", null);

    /**
     * The plugin's thread pool in the node's {@code ThreadPool} (so {@code _cat/thread_pool} and node stats show it):
     * the inference client's gRPC callbacks (every Encode, Rerank and Info answer, with the caller's ThreadContext
     * restored), its delayed retries (scheduled by the node's scheduler, run here) and gRPC's blocking offload work
     * (name resolution). Scaling, so a callback is never rejected, which would lose a response: its settings are the
     * builder's own, {@code thread_pool.sesa_inference.core} ({@link #THREAD_POOL_CORE}),
     * {@code thread_pool.sesa_inference.max} ({@link #threadPoolMax}) and {@code thread_pool.sesa_inference.keep_alive}
     * ({@link #THREAD_POOL_KEEP_ALIVE}), registered by the node from {@link #executorBuilders}, not by {@link #all}.
     */
    public static final String THREAD_POOL = "sesa_inference";

    /** Threads the pool keeps while idle. */
    public static final int THREAD_POOL_CORE = 1;

    /** How long a thread above the core stays idle before it ends. */
    public static final TimeValue THREAD_POOL_KEEP_ALIVE = TimeValue.timeValueMinutes(5);

    /**
     * The default most threads of {@link #THREAD_POOL}: the node's allocated processors, at least 2 and at most 8.
     * A callback applies a response (parses it, writes a sub-batch's vectors into its documents), it never waits.
     */
    public static int threadPoolMax(Settings settings) {
        return Math.max(2, Math.min(8, OpenSearchExecutors.allocatedProcessors(settings)));
    }

    /** The thread pools the plugin adds to the node ({@code Plugin#getExecutorBuilders}). */
    public static List<ExecutorBuilder<?>> executorBuilders(Settings settings) {
        return List.of(new ScalingExecutorBuilder(THREAD_POOL, THREAD_POOL_CORE, threadPoolMax(settings), THREAD_POOL_KEEP_ALIVE));
    }

    public static List<Setting<?>> all() {
        return List.of(ENDPOINTS, TIMEOUT, INGEST_TIMEOUT, MAX_RETRIES, TLS_ENABLED, TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE, TLS_KEY_PASSWORD, AUTH_TOKEN);
    }

    private static void validateEndpoints(List<Endpoint> endpoints) {
        if (endpoints.isEmpty()) {
            throw new IllegalArgumentException("[" + ENDPOINTS.getKey() + "] must list at least one host:port");
        }
        Set<Endpoint> seen = new HashSet<>();
        for (Endpoint e : endpoints) {
            if (seen.add(e) == false) {
                throw new IllegalArgumentException("[" + ENDPOINTS.getKey() + "] lists [" + e + "] twice");
            }
        }
    }
}
