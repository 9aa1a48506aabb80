package org.sesa.opensearch.ingest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.opensearch.OpenSearchParseException;
import org.opensearch.common.unit.TimeValue;
import org.sesa.opensearch.FakeInference;
import org.sesa.opensearch.inference.Endpoint;
import org.sesa.opensearch.inference.InferenceClient;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SesaEncodeProcessorFactoryTests {

    private static InferenceClient client;
    private static SesaEncodeProcessorFactory factory;

    @BeforeAll
    static void setUp() {
        client = FakeInference.client(List.of(new Endpoint("unused", 1)), FakeInference.IN_PROCESS_CHANNELS).build();
        factory = new SesaEncodeProcessorFactory(() -> client, ModelMetaLookup.NONE, org.sesa.opensearch.index.MappingFixtures.FITS);
    }

    @AfterAll
    static void tearDown() {
        client.close();
    }

    private static Map<String, Object> config(Object... kv) {
        Map<String, Object> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    private static String error(Map<String, Object> config) {
        Exception e = assertThrows(Exception.class, () -> factory.create(Map.of(), "t1", null, config));
        return e.getMessage();
    }

    @Test
    void defaults() throws Exception {
        Map<String, Object> cfg = config("field_map", new HashMap<>(Map.of("title, text", "sesa")));
        SesaEncodeProcessor p = factory.create(Map.of(), "t1", "d", cfg);
        assertTrue(cfg.isEmpty(), "factory must consume what it reads");
        assertEquals(32, p.getBatchSize());
        assertNull(p.getTimeout());
        assertFalse(p.isIgnoreMissing());
        assertEquals(1, p.getMappings().size());
        FieldMapping m = p.getMappings().get(0);
        assertEquals(List.of("title", "text"), m.sourceFields());
        assertEquals("sesa_dense", m.target().dense());
        assertEquals("sesa_concepts", m.target().concepts());
        assertEquals("sesa_concept_labels", m.target().conceptLabels());
        assertEquals("sesa_status", m.target().status());
        assertEquals("sesa_encode", p.getType());
    }

    @Test
    void allOptions() throws Exception {
        Map<String, Object> cfg = config(
            "field_map", Map.of("title", "a", "body", "b"),
            "batch_size", 8,
            "timeout", "750ms",
            "ignore_missing", true,
            "top_k_concepts", 16,
            "top_labels", 4,
            "allow_model_change", true,
            "separator", " | "
        );
        SesaEncodeProcessor p = factory.create(Map.of(), null, null, cfg);
        assertTrue(cfg.isEmpty());
        assertEquals(8, p.getBatchSize());
        assertEquals(TimeValue.timeValueMillis(750), p.getTimeout());
        assertTrue(p.isIgnoreMissing());
        assertEquals(2, p.getMappings().size());
    }

    @Test
    void unknownKeysAreLeftForOpenSearchToReject() throws Exception {
        Map<String, Object> cfg = config("field_map", Map.of("title", "sesa"), "bogus", 1);
        factory.create(Map.of(), null, null, cfg);
        assertEquals(Map.of("bogus", 1), cfg);
    }

    @Test
    void validationErrors() {
        assertTrue(error(config()).contains("[field_map] required property is missing"), error(config()));
        assertTrue(error(config("field_map", "title")).contains("field_map"));
        assertTrue(error(config("field_map", Map.of())).contains("at least one source field"));
        assertTrue(error(config("field_map", Map.of("title,", "sesa"))).contains("empty field name"));
        assertTrue(error(config("field_map", Map.of("a,a", "sesa"))).contains("twice"));
        assertTrue(error(config("field_map", Map.of("title", 5))).contains("must be a target prefix string"));
        assertTrue(error(config("field_map", Map.of("title", " "))).contains("no whitespace"));
        assertTrue(error(config("field_map", Map.of("title", "_x"))).contains("field path"));
        assertTrue(error(config("field_map", Map.of("title", "s", "body", "s"))).contains("more than one entry"));
        assertTrue(error(config("field_map", Map.of("sesa_dense", "sesa"))).contains("would be overwritten"));
        assertTrue(error(config("field_map", Map.of("t", "s"), "batch_size", 0)).contains("between 1 and 1024"));
        assertTrue(error(config("field_map", Map.of("t", "s"), "batch_size", 1025)).contains("between 1 and 1024"));
        assertTrue(error(config("field_map", Map.of("t", "s"), "timeout", "soon")).contains("time value"));
        assertTrue(error(config("field_map", Map.of("t", "s"), "timeout", "0s")).contains("positive"));
        assertTrue(error(config("field_map", Map.of("t", "s"), "top_k_concepts", -1)).contains("between 0"));
        assertTrue(error(config("field_map", Map.of("t", "s"), "top_labels", 5000)).contains("between 0"));
        Exception e = assertThrows(OpenSearchParseException.class, () -> factory.create(Map.of(), "t1", null, config("field_map", Map.of())));
        assertEquals("t1", e instanceof OpenSearchParseException ope ? ope.getMetadata("opensearch.processor_tag").get(0) : null);
    }
}
