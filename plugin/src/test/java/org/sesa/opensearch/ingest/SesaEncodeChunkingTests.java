package org.sesa.opensearch.ingest;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.opensearch.OpenSearchParseException;
import org.opensearch.ingest.IngestDocument;
import org.opensearch.ingest.IngestDocumentWrapper;
import org.sesa.inference.v1.Concept;
import org.sesa.inference.v1.Embedding;
import org.sesa.inference.v1.Window;
import org.sesa.opensearch.FakeInference;
import org.sesa.opensearch.FakeInferenceFixture;
import org.sesa.opensearch.index.MappingFixtures;
import org.sesa.opensearch.index.MappingVerdict;
import org.sesa.opensearch.index.TargetMappings;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@code chunking} option of {@code sesa_encode}: its validation, the Encode options, the fields and the mapping check. */
class SesaEncodeChunkingTests {

    @RegisterExtension
    final FakeInferenceFixture fake = new FakeInferenceFixture(b -> b);
    private final FakeInference service = fake.service;

    /** The index maps what the repository's sesa-* template maps (chunks included), dimension 2. */
    private TargetMappings targetMappings = new TargetMappings() {
        @Override
        public MappingVerdict verdict(String target, SesaFieldNames names) {
            return verdict(target, names, false);
        }

        @Override
        public MappingVerdict verdict(String target, SesaFieldNames names, boolean chunks) {
            Map<String, Object> props = MappingFixtures.sesaTemplateMapping(MappingFixtures.DIMENSION);
            @SuppressWarnings("unchecked")
            Map<String, Object> properties = (Map<String, Object>) props.get("properties");
            return MappingVerdict.of("index [" + target + "]", properties, names, null, chunks);
        }
    };

    /** What the index records as its chunking for every prefix ({@code _meta.sesa.chunking.<prefix>}); null: nothing. */
    private Object recordedChunking;

    private SesaEncodeProcessor processor(Object chunking, Object... kv) throws Exception {
        Map<String, Object> cfg = new HashMap<>();
        cfg.put("field_map", Map.of("title,text", "sesa"));
        cfg.put("separator", " | ");
        if (chunking != null) {
            cfg.put("chunking", chunking);
        }
        for (int i = 0; i < kv.length; i += 2) {
            cfg.put((String) kv[i], kv[i + 1]);
        }
        ModelMetaLookup meta = new ModelMetaLookup() {
            @Override
            public Object expectedModels(String index, String prefix) {
                return null;
            }

            @Override
            public Object expectedChunking(String index, String prefix) {
                return recordedChunking;
            }
        };
        return new SesaEncodeProcessorFactory(fake::client, meta, targetMappings).create(Map.of(), "tag", null, cfg);
    }

    private static IngestDocumentWrapper run(SesaEncodeProcessor p, Map<String, Object> source) throws Exception {
        IngestDocument doc = new IngestDocument("idx", "1", null, null, null, new HashMap<>(source));
        CompletableFuture<List<IngestDocumentWrapper>> f = new CompletableFuture<>();
        p.batchExecute(List.of(new IngestDocumentWrapper(0, 0, doc, null)), f::complete);
        return f.get(10, TimeUnit.SECONDS).get(0);
    }

    /** Two windows of the text: [0, 5) with vector (1, 0), [3, len) with (0, 1); mean (0.7, 0.7). */
    private static Embedding twoWindows(String text) {
        return Embedding.newBuilder()
            .addDense(0.7f)
            .addDense(0.7f)
            .addConcepts(Concept.newBuilder().setKey("c1").setWeight(0.9f))
            .addTopLabels("label")
            .addWindows(Window.newBuilder().addDense(1f).addDense(0f).setStartChar(0).setEndChar(5).setNumTokens(4))
            .addWindows(Window.newBuilder().addDense(0f).addDense(1f).setStartChar(3).setEndChar(text.length()).setNumTokens(6))
            .setCoverage(0.75f)
            .setTruncated(true)
            .build();
    }

    @Test
    void absentChunkingIsTodaysBehaviour() throws Exception {
        SesaEncodeProcessor p = processor(null);
        assertNull(p.getChunking());
        IngestDocumentWrapper w = run(p, Map.of("title", "hello", "text", "world"));
        assertNull(w.getException());
        assertFalse(service.encoding.requests.get(0).getOptions().hasChunking());
        assertFalse(w.getIngestDocument().hasField("sesa_chunks"));
        assertFalse(w.getIngestDocument().hasField("sesa_coverage"));
    }

    @Test
    void defaultsAreSentAndWindowsWritten() throws Exception {
        service.embedder = SesaEncodeChunkingTests::twoWindows;
        SesaEncodeProcessor p = processor(Map.of());
        IngestDocumentWrapper w = run(p, Map.of("title", "hello", "text", "world"));
        assertNull(w.getException(), () -> "unexpected: " + w.getException());
        var chunking = service.encoding.requests.get(0).getOptions().getChunking();
        assertEquals(0, chunking.getWindowTokens());
        assertEquals(32, chunking.getOverlapTokens());
        assertEquals(64, chunking.getMaxWindows());
        IngestDocument d = w.getIngestDocument();
        assertEquals(List.of(1f, 0f), d.getFieldValue("sesa_dense", List.class), "the first window, not the mean");
        Map<String, Object> first = new LinkedHashMap<>();
        first.put("dense", List.of(1f, 0f));
        first.put("start", 0);
        first.put("end", 5);
        Map<String, Object> second = new LinkedHashMap<>();
        second.put("dense", List.of(0f, 1f));
        second.put("start", 3);
        second.put("end", "hello | world".length());
        assertEquals(List.of(first, second), d.getFieldValue("sesa_chunks", List.class));
        assertEquals(0.75f, d.getFieldValue("sesa_coverage", Float.class));
        assertEquals(Map.of("c1", 0.9f), d.getFieldValue("sesa_concepts", Map.class));
        assertEquals(List.of("label"), d.getFieldValue("sesa_concept_labels", List.class));
        assertTrue(d.getFieldValue("sesa_truncated", Boolean.class));
        assertEquals("encoded", d.getFieldValue("sesa_status", String.class));
    }

    @Test
    void aTextOfOneWindowStoresNoChunksAndDropsStaleOnes() throws Exception {
        service.embedder = text -> Embedding.newBuilder()
            .addDense(1f)
            .addDense(0f)
            .addWindows(Window.newBuilder().addDense(1f).addDense(0f).setStartChar(0).setEndChar(text.length()).setNumTokens(3))
            .setCoverage(1f)
            .build();
        SesaEncodeProcessor p = processor(Map.of());
        // a document re-sent with the windows of an earlier, longer version of its text
        IngestDocumentWrapper w = run(p, Map.of("title", "hello", "text", "world",
            "sesa_chunks", List.of(Map.of("dense", List.of(0f, 1f), "start", 0, "end", 99))));
        assertNull(w.getException(), () -> "unexpected: " + w.getException());
        IngestDocument d = w.getIngestDocument();
        assertEquals(List.of(1f, 0f), d.getFieldValue("sesa_dense", List.class), "the one window is the dense vector");
        assertFalse(d.hasField("sesa_chunks"), "one window: no nested copy of the dense vector");
        assertEquals(1f, d.getFieldValue("sesa_coverage", Float.class));
    }

    @Test
    void explicitValuesAreSent() throws Exception {
        service.embedder = SesaEncodeChunkingTests::twoWindows;
        SesaEncodeProcessor p = processor(Map.of("window_tokens", 128, "overlap_tokens", 16, "max_windows", 4));
        assertNull(run(p, Map.of("text", "some text")).getException());
        var chunking = service.encoding.requests.get(0).getOptions().getChunking();
        assertEquals(128, chunking.getWindowTokens());
        assertEquals(16, chunking.getOverlapTokens());
        assertEquals(4, chunking.getMaxWindows());
        assertEquals(p.getChunking(), chunking);
    }

    @Test
    void badOptionsAreRefusedWithTheirRule() {
        assertRefused("a string", "must be an object");
        assertRefused(Map.of("window", 1), "unknown key [window]");
        assertRefused(Map.of("window_tokens", -1), "window_tokens", "between 0");
        assertRefused(Map.of("window_tokens", 100_000), "window_tokens", "8192");
        assertRefused(Map.of("window_tokens", "big"), "must be an integer");
        assertRefused(Map.of("window_tokens", 1.5), "must be an integer");
        assertRefused(Map.of("overlap_tokens", 0), "overlap_tokens", "at least 1");
        assertRefused(Map.of("window_tokens", 64, "overlap_tokens", 40), "at most half");
        assertRefused(Map.of("max_windows", 0), "max_windows", "between 1 and 256");
        assertRefused(Map.of("max_windows", 1000), "max_windows");
    }

    private void assertRefused(Object chunking, String... fragments) {
        OpenSearchParseException e = assertThrows(OpenSearchParseException.class, () -> processor(chunking));
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), () -> "[" + e.getMessage() + "] should contain [" + f + "]");
        }
    }

    @Test
    void anIndexWithoutChunkFieldsRefusesChunkedDocuments() throws Exception {
        targetMappings = new TargetMappings() {
            @Override
            public MappingVerdict verdict(String target, SesaFieldNames names) {
                return verdict(target, names, false);
            }

            @Override
            public MappingVerdict verdict(String target, SesaFieldNames names, boolean chunks) {
                return MappingVerdict.of("index [" + target + "]", MappingFixtures.sesaProperties("sesa", 2), names, null, chunks);
            }
        };
        service.embedder = SesaEncodeChunkingTests::twoWindows;
        IngestDocumentWrapper w = run(processor(Map.of()), Map.of("text", "some text"));
        assertNotNull(w.getException());
        String msg = w.getException().getMessage();
        assertTrue(msg.contains("[sesa_chunks] is not mapped, must be [nested]"), msg);
        assertTrue(msg.contains("[sesa_coverage] is not mapped, must be [float]"), msg);
        assertEquals(0, service.encoding.calls.get(), "nothing is sent for a document its index cannot hold");
        // without chunking the same index is fine
        service.embedder = null;
        assertNull(run(processor(null), Map.of("text", "some text")).getException());
    }

    @Test
    void aResponseWithoutWindowsFailsTheDocument() throws Exception {
        service.embedder = text -> Embedding.newBuilder().addDense(1f).addDense(0f).build();
        IngestDocumentWrapper w = run(processor(Map.of()), Map.of("text", "some text"));
        assertNotNull(w.getException());
        assertTrue(w.getException().getMessage().contains("no windows"), w.getException().getMessage());
        assertFalse(w.getIngestDocument().hasField("sesa_dense"));
    }

    @Test
    void windowsOfAnotherDimensionThanTheIndexMapsFail() throws Exception {
        service.embedder = text -> Embedding.newBuilder()
            .addDense(1f)
            .addWindows(Window.newBuilder().addDense(1f).addDense(0f).addDense(0f).setStartChar(0).setEndChar(3))
            .build();
        IngestDocumentWrapper w = run(processor(Map.of()), Map.of("text", "some text"));
        assertNotNull(w.getException());
        assertTrue(w.getException().getMessage().contains("dimension [3]"), w.getException().getMessage());
    }

    @Test
    void anIndexThatRecordsAnotherChunkingRefusesTheDocumentBeforeAnyCall() throws Exception {
        service.embedder = SesaEncodeChunkingTests::twoWindows;
        Map<String, Object> source = Map.of("title", "Title", "text", "a long body");
        Map<String, Object> shipped = Map.of("window_tokens", 0, "overlap_tokens", 32, "max_windows", 64);

        // the same option as recorded (keys left out take the option's defaults): encoded
        recordedChunking = shipped;
        assertNull(run(processor(Map.of("window_tokens", 0)), source).getException());
        recordedChunking = Map.of();
        assertNull(run(processor(new HashMap<>(shipped)), source).getException(), "an empty record is the defaults");
        int calls = service.encoding.calls.get();

        // another window size, or no chunking where the index chunked: refused with both sides and the fixes, nothing sent
        recordedChunking = shipped;
        Exception e = run(processor(Map.of("window_tokens", 128, "overlap_tokens", 16)), source).getException();
        assertNotNull(e);
        assertTrue(e.getMessage().contains("index [idx] records chunking {window_tokens=0, overlap_tokens=32, max_windows=64}"), e.getMessage());
        assertTrue(e.getMessage().contains("cuts texts with chunking {window_tokens=128, overlap_tokens=16, max_windows=64}"), e.getMessage());
        assertTrue(e.getMessage().contains("_meta.sesa.chunking.sesa") && e.getMessage().contains("allow_model_change"), e.getMessage());
        e = run(processor(null), source).getException();
        assertNotNull(e);
        assertTrue(e.getMessage().contains("cuts texts with chunking off"), e.getMessage());
        assertEquals(calls, service.encoding.calls.get(), "a refused document's text is not sent");

        // an index of whole texts refuses a chunking pipeline, takes an unchunked one
        recordedChunking = "off";
        assertNotNull(run(processor(shipped), source).getException());
        assertNull(run(processor(null), source).getException());

        // allow_model_change skips the check; an unreadable record fails with its reason
        recordedChunking = shipped;
        assertNull(run(processor(null, "allow_model_change", true), source).getException());
        recordedChunking = 42;
        e = run(processor(shipped), source).getException();
        assertNotNull(e);
        assertTrue(e.getMessage().contains("unreadable [_meta.sesa.chunking.sesa]"), e.getMessage());
    }
}
