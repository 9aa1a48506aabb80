package org.sesa.opensearch.inference;

import org.opensearch.common.settings.Settings;
import org.opensearch.core.common.settings.SecureString;
import org.sesa.opensearch.settings.SesaSettings;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The static part of the client configuration, resolved and cross-checked once at node start so that
 * a bad TLS path or half-configured mutual TLS stops the node with a clear message.
 *
 * @param endpoints servers in round-robin order
 * @param tls       TLS material, or {@code null} for plaintext
 * @param authToken bearer token, or {@code null}
 */
public record InferenceClientConfig(List<Endpoint> endpoints, TlsConfig tls, String authToken) {

    /**
     * PEM files for TLS; {@code null} members mean "not configured". {@code keyPassword} (from the keystore)
     * decrypts an encrypted PKCS#8 key and is never printed.
     */
    public record TlsConfig(Path caFile, Path certFile, Path keyFile, String keyPassword) {

        public TlsConfig(Path caFile, Path certFile, Path keyFile) {
            this(caFile, certFile, keyFile, null);
        }

        @Override
        public String toString() {
            return "TlsConfig[caFile=" + caFile + ", certFile=" + certFile + ", keyFile=" + keyFile + ", keyPassword="
                + (keyPassword == null ? "none" : "set") + "]";
        }
    }

    @Override
    public String toString() {
        // Never print the token.
        return "InferenceClientConfig[endpoints=" + endpoints + ", tls=" + tls + ", authToken=" + (authToken == null ? "none" : "set") + "]";
    }

    /** Reads and validates the node settings; relative paths are resolved against {@code configDir}. */
    public static InferenceClientConfig fromSettings(Settings settings, Path configDir) {
        List<Endpoint> endpoints = SesaSettings.ENDPOINTS.get(settings);
        boolean tlsEnabled = SesaSettings.TLS_ENABLED.get(settings);
        String ca = SesaSettings.TLS_CA_FILE.get(settings);
        String cert = SesaSettings.TLS_CERT_FILE.get(settings);
        String key = SesaSettings.TLS_KEY_FILE.get(settings);

        if (tlsEnabled == false && (ca.isEmpty() == false || cert.isEmpty() == false || key.isEmpty() == false)) {
            throw new IllegalArgumentException(
                "[" + SesaSettings.PREFIX + "tls.*] files are set but [" + SesaSettings.TLS_ENABLED.getKey() + "] is false; enable TLS or remove them"
            );
        }
        if (cert.isEmpty() != key.isEmpty()) {
            throw new IllegalArgumentException(
                "[" + SesaSettings.TLS_CERT_FILE.getKey() + "] and [" + SesaSettings.TLS_KEY_FILE.getKey() + "] must be set together (mutual TLS)"
            );
        }
        String keyPassword = null;
        if (SesaSettings.TLS_KEY_PASSWORD.exists(settings)) {
            if (key.isEmpty()) {
                throw new IllegalArgumentException(
                    "[" + SesaSettings.TLS_KEY_PASSWORD.getKey() + "] is in the keystore but [" + SesaSettings.TLS_KEY_FILE.getKey() + "] is not set"
                );
            }
            try (SecureString s = SesaSettings.TLS_KEY_PASSWORD.get(settings)) {
                keyPassword = s.toString();
            }
        }
        TlsConfig tls = null;
        if (tlsEnabled) {
            tls = new TlsConfig(
                resolve(SesaSettings.TLS_CA_FILE.getKey(), ca, configDir),
                resolve(SesaSettings.TLS_CERT_FILE.getKey(), cert, configDir),
                resolve(SesaSettings.TLS_KEY_FILE.getKey(), key, configDir),
                keyPassword
            );
        }

        String token = null;
        if (SesaSettings.AUTH_TOKEN.exists(settings)) {
            try (SecureString s = SesaSettings.AUTH_TOKEN.get(settings)) {
                String t = s.toString().trim();
                if (t.isEmpty()) {
                    throw new IllegalArgumentException("[" + SesaSettings.AUTH_TOKEN.getKey() + "] is empty in the keystore");
                }
                if (t.chars().anyMatch(ch -> ch < 0x20 || ch > 0x7e)) {
                    throw new IllegalArgumentException("[" + SesaSettings.AUTH_TOKEN.getKey() + "] must be printable ASCII");
                }
                token = t;
            }
        }
        return new InferenceClientConfig(List.copyOf(endpoints), tls, token);
    }

    /**
     * Files must live under the config directory: that is where the OpenSearch agent lets plugins read,
     * and it keeps key material next to the node's other certificates.
     */
    private static Path resolve(String key, String value, Path configDir) {
        if (value.isEmpty()) {
            return null;
        }
        Path config = configDir.toAbsolutePath().normalize();
        Path p = config.resolve(value).normalize();
        if (p.startsWith(config) == false) {
            throw new IllegalArgumentException("[" + key + "] = [" + value + "] must be inside the config directory [" + config + "]");
        }
        if (Files.isRegularFile(p) == false) {
            throw new IllegalArgumentException("[" + key + "] = [" + value + "]: file [" + p + "] does not exist");
        }
        return p;
    }
}
