package org.sesa.opensearch.settings;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.opensearch.common.settings.SecureSettings;
import org.opensearch.core.common.settings.SecureString;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.sesa.opensearch.inference.Endpoint;
import org.sesa.opensearch.inference.InferenceClientConfig;

import java.nio.file.Files;
import java.nio.file.Path;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SesaSettingsTests {

    @TempDir
    Path config;

    @Test
    void defaults() {
        assertEquals(List.of(new Endpoint("127.0.0.1", 50051)), SesaSettings.ENDPOINTS.get(Settings.EMPTY));
        assertEquals(TimeValue.timeValueSeconds(10), SesaSettings.TIMEOUT.get(Settings.EMPTY));
        assertEquals(3, SesaSettings.MAX_RETRIES.get(Settings.EMPTY));
        assertFalse(SesaSettings.TLS_ENABLED.get(Settings.EMPTY));
        assertTrue(SesaSettings.TIMEOUT.isDynamic());
        assertFalse(SesaSettings.ENDPOINTS.isDynamic());
        InferenceClientConfig c = InferenceClientConfig.fromSettings(Settings.EMPTY, config);
        assertNull(c.tls());
        assertNull(c.authToken());
    }

    @Test
    void endpointParsing() {
        assertEquals(new Endpoint("inference.local", 443), Endpoint.parse(" inference.local:443 "));
        assertEquals(new Endpoint("::1", 50051), Endpoint.parse("[::1]:50051"));
        assertEquals("[::1]:50051", Endpoint.parse("[::1]:50051").toString());
        for (String bad : new String[] { "", "host", ":50051", "host:", "host:abc", "host:0", "host:70000", "http://h:1", "::1:5", "a b:1" }) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Endpoint.parse(bad), bad);
            assertTrue(e.getMessage().contains("invalid inference endpoint [" + bad + "]"), e.getMessage());
        }
    }

    @Test
    void endpointListValidation() {
        Settings two = Settings.builder().putList("sesa.inference.endpoints", "a:1", "b:2").build();
        assertEquals(List.of(new Endpoint("a", 1), new Endpoint("b", 2)), SesaSettings.ENDPOINTS.get(two));
        Settings dup = Settings.builder().putList("sesa.inference.endpoints", "a:1", "a:1").build();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SesaSettings.ENDPOINTS.get(dup)).getMessage().contains("twice"));
        Settings bad = Settings.builder().putList("sesa.inference.endpoints", "a").build();
        Exception e = assertThrows(IllegalArgumentException.class, () -> SesaSettings.ENDPOINTS.get(bad));
        assertTrue(e.getMessage().contains("expected host:port") || e.getCause().getMessage().contains("expected host:port"), e.getMessage());
        Settings badRetries = Settings.builder().put("sesa.inference.max_retries", 11).build();
        assertThrows(IllegalArgumentException.class, () -> SesaSettings.MAX_RETRIES.get(badRetries));
        Settings badTimeout = Settings.builder().put("sesa.inference.timeout", "0s").build();
        assertThrows(IllegalArgumentException.class, () -> SesaSettings.TIMEOUT.get(badTimeout));
        assertEquals(TimeValue.timeValueSeconds(60), SesaSettings.INGEST_TIMEOUT.get(Settings.EMPTY), "ingest waits longer than search");
        Settings badIngestTimeout = Settings.builder().put("sesa.inference.ingest_timeout", "0s").build();
        assertThrows(IllegalArgumentException.class, () -> SesaSettings.INGEST_TIMEOUT.get(badIngestTimeout));
    }

    @Test
    void tlsValidation() throws Exception {
        Files.writeString(config.resolve("ca.pem"), "x");
        Settings filesWithoutTls = Settings.builder().put("sesa.inference.tls.ca_file", "ca.pem").build();
        assertTrue(error(filesWithoutTls).contains("tls.enabled"));

        Settings certOnly = Settings.builder().put("sesa.inference.tls.enabled", true).put("sesa.inference.tls.cert_file", "c.pem").build();
        assertTrue(error(certOnly).contains("must be set together"));

        Settings outside = Settings.builder().put("sesa.inference.tls.enabled", true).put("sesa.inference.tls.ca_file", "../ca.pem").build();
        assertTrue(error(outside).contains("inside the config directory"));

        Settings absent = Settings.builder().put("sesa.inference.tls.enabled", true).put("sesa.inference.tls.ca_file", "nope.pem").build();
        assertTrue(error(absent).contains("does not exist"));

        Settings ok = Settings.builder().put("sesa.inference.tls.enabled", true).put("sesa.inference.tls.ca_file", "ca.pem").build();
        InferenceClientConfig c = InferenceClientConfig.fromSettings(ok, config);
        assertEquals(config.resolve("ca.pem").toAbsolutePath().normalize(), c.tls().caFile());
        assertNull(c.tls().certFile());
    }

    @Test
    void authTokenFromKeystore() {
        SecureSettings secure = new KeystoreStub(Map.of("sesa.inference.auth_token", " tok-123 "));
        InferenceClientConfig c = InferenceClientConfig.fromSettings(Settings.builder().setSecureSettings(secure).build(), config);
        assertEquals("tok-123", c.authToken());
        assertFalse(c.toString().contains("tok-123"), "token must never be printed");
    }

    @Test
    void keyPasswordFromKeystoreOnlyWithAKeyFile() throws Exception {
        Files.writeString(config.resolve("c.pem"), "x");
        Files.writeString(config.resolve("k.pem"), "x");
        SecureSettings secure = new KeystoreStub(Map.of("sesa.inference.tls.key_password", "s3cret-pw"));
        Settings mtls = Settings.builder()
            .put("sesa.inference.tls.enabled", true)
            .put("sesa.inference.tls.cert_file", "c.pem")
            .put("sesa.inference.tls.key_file", "k.pem")
            .setSecureSettings(secure)
            .build();
        InferenceClientConfig c = InferenceClientConfig.fromSettings(mtls, config);
        assertEquals("s3cret-pw", c.tls().keyPassword());
        assertFalse(c.toString().contains("s3cret-pw"), "the key password must never be printed");

        Settings noKey = Settings.builder().put("sesa.inference.tls.enabled", true).setSecureSettings(secure).build();
        assertTrue(error(noKey).contains("tls.key_file"));
    }

    private String error(Settings s) {
        return assertThrows(IllegalArgumentException.class, () -> InferenceClientConfig.fromSettings(s, config)).getMessage();
    }

    /** Minimal in-memory keystore (the OpenSearch test framework's mock is not on our classpath). */
    private record KeystoreStub(Map<String, String> values) implements SecureSettings {
        @Override
        public boolean isLoaded() {
            return true;
        }

        @Override
        public Set<String> getSettingNames() {
            return values.keySet();
        }

        @Override
        public SecureString getString(String name) {
            return new SecureString(values.get(name).toCharArray());
        }

        @Override
        public InputStream getFile(String name) {
            throw new UnsupportedOperationException();
        }

        @Override
        public byte[] getSHA256Digest(String name) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void close() {}
    }
}
