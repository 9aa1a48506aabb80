package org.sesa.opensearch.ingest;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.opensearch.ExceptionsHelper;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.ingest.IngestDocument;
import org.opensearch.ingest.IngestDocumentWrapper;
import org.sesa.inference.v1.EncodeRequest;
import org.sesa.opensearch.FakeInference;
import org.sesa.opensearch.FakeInferenceFixture;
import org.sesa.opensearch.index.MappingFixtures;
import org.sesa.opensearch.index.MappingVerdict;
import org.sesa.opensearch.index.TargetMappings;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.opensearch.plugins.IngestPlugin.SystemIngestPipelineConfigKeys.INDEX_MAPPINGS;
import static org.opensearch.plugins.IngestPlugin.SystemIngestPipelineConfigKeys.INDEX_TEMPLATE_MAPPINGS;
import static org.sesa.opensearch.index.MappingFixtures.json;

/**
 * The {@code sesa_text} system ingest processor: its factory makes one only for indices (or templates) with sesa_text
 * fields, and it encodes each field into its {@code <field>_sesa_*} siblings with the machinery of {@code sesa_encode}.
 */
class SesaTextIngestProcessorTests {

    @RegisterExtension
    final FakeInferenceFixture fake = new FakeInferenceFixture(b -> b.maxRetries(() -> 0));
    private final FakeInference service = fake.service;
    private Object expectedModels;
    private TargetMappings targetMappings = MappingFixtures.FITS;

    private SesaTextIngestProcessorFactory factory() {
        return new SesaTextIngestProcessorFactory(fake::client, (index, prefix) -> expectedModels, (index, names) -> targetMappings.verdict(index, names));
    }

    private SesaTextIngestProcessor processor(Map<String, Object> config) throws Exception {
        return (SesaTextIngestProcessor) factory().create(Map.of(), null, null, config);
    }

    private SesaTextIngestProcessor processorFor(String mappingJson) throws Exception {
        return processor(new HashMap<>(Map.of(INDEX_MAPPINGS, json(mappingJson))));
    }

    private static IngestDocument doc(String id, Object... kv) {
        Map<String, Object> source = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            source.put((String) kv[i], kv[i + 1]);
        }
        return new IngestDocument("docs", id, null, null, null, source);
    }

    private static IngestDocumentWrapper[] run(SesaTextIngestProcessor p, IngestDocument... docs) throws Exception {
        List<IngestDocumentWrapper> in = new ArrayList<>();
        for (int i = 0; i < docs.length; i++) {
            in.add(new IngestDocumentWrapper(i, 0, docs[i], null));
        }
        CompletableFuture<List<IngestDocumentWrapper>> f = new CompletableFuture<>();
        p.batchExecute(in, f::complete);
        List<IngestDocumentWrapper> out = f.get(10, TimeUnit.SECONDS);
        assertEquals(docs.length, out.size());
        return out.toArray(new IngestDocumentWrapper[0]);
    }

    @Test
    void noProcessorForAnIndexWithoutSesaTextFields() throws Exception {
        assertNull(processor(new HashMap<>()), "no mapping at all");
        assertNull(processorFor("{\"properties\": {\"text\": {\"type\": \"text\"}, \"sesa_dense\": {\"type\": \"knn_vector\", \"dimension\": 2}}}"));
        assertNull(processorFor("{\"_doc\": {\"properties\": {\"obj\": {\"properties\": {\"t\": {\"type\": \"text\"}}}}}}"));
        assertNull(processor(new HashMap<>(Map.of(INDEX_TEMPLATE_MAPPINGS, List.of(json("{\"properties\": {\"t\": {\"type\": \"keyword\"}}}"))))));
        assertNull(processorFor("{\"properties\": {\"items\": {\"type\": \"nested\", \"properties\": {\"b\": {\"type\": \"sesa_text\"}}}}}"));
    }

    @Test
    void aProcessorForEverySesaTextFieldOfTheIndex() throws Exception {
        SesaTextIngestProcessor p = processorFor(
            "{\"_doc\": {\"properties\": {\"title\": {\"type\": \"sesa_text\"}, \"text\": {\"type\": \"text\"},"
                + " \"doc\": {\"properties\": {\"body\": {\"type\": \"sesa_text\", \"concept_space\": \"esco\"}}}}}}"
        );
        assertNotNull(p);
        assertEquals(Map.of("title", "", "doc.body", "esco"), p.fields());
        assertEquals(2, p.encoders().size(), "one encoder per concept space");
        assertEquals("sesa_text", p.getType());
        assertTrue(p.isSystemGenerated());
        assertEquals(SesaTextIngestProcessorFactory.BATCH_SIZE, p.getBatchSize());
        assertTrue(factory().isSystemGenerated(), "OpenSearch only takes system generated factories here");
    }

    @Test
    void anIndexNotCreatedYetTakesItsFieldsFromTheTemplates() throws Exception {
        SesaTextIngestProcessor p = processor(
            new HashMap<>(
                Map.of(
                    INDEX_TEMPLATE_MAPPINGS,
                    List.of(
                        json("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}}}"),
                        json("{\"properties\": {\"title\": {\"type\": \"sesa_text\", \"concept_space\": \"onet\"}}}")
                    )
                )
            )
        );
        assertEquals(Map.of("body", "", "title", "onet"), p.fields());
    }

    @Test
    void encodesEachFieldIntoItsSiblings() throws Exception {
        SesaTextIngestProcessor p = processorFor("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}, \"title\": {\"type\": \"sesa_text\"}}}");
        IngestDocumentWrapper[] out = run(p, doc("1", "body", "hello", "title", "hi"), doc("2", "title", "only"), doc("3", "body", List.of("a", "b")));
        assertEquals(1, service.encoding.calls.get(), "the fields of one concept space share a call");
        EncodeRequest r = service.encoding.requests.get(0);
        assertEquals(List.of("hello", "hi", "only", "a\nb"), r.getTextsList());
        assertEquals(org.sesa.inference.v1.TextKind.TEXT_KIND_PASSAGE, r.getOptions().getKind());
        assertEquals("", r.getOptions().getConceptSpace(), "no concept_space: the server's default");

        IngestDocument d1 = out[0].getIngestDocument();
        assertNull(out[0].getException());
        assertEquals(List.of(5f, 1f), d1.getFieldValue("body_sesa_dense", List.class));
        assertEquals(Map.of("k_hello", 0.5f), d1.getFieldValue("body_sesa_concepts", Map.class));
        assertEquals(List.of("hello"), d1.getFieldValue("body_sesa_concept_labels", List.class));
        assertEquals(Map.of("dense", "fake-dense@1", "concepts", "fake-concepts@2"), d1.getFieldValue("body_sesa_model", Map.class));
        assertEquals(false, d1.getFieldValue("body_sesa_truncated", Boolean.class));
        assertEquals("encoded", d1.getFieldValue("body_sesa_status", String.class));
        assertEquals(List.of(2f, 1f), d1.getFieldValue("title_sesa_dense", List.class));
        assertEquals("hello", d1.getFieldValue("body", String.class), "the text itself stays");

        // a document without text in a field: indexed, that field marked missing_source, no vectors for it
        IngestDocument d2 = out[1].getIngestDocument();
        assertNull(out[1].getException());
        assertEquals("missing_source", d2.getFieldValue("body_sesa_status", String.class));
        assertFalse(d2.hasField("body_sesa_dense"));
        assertEquals("encoded", d2.getFieldValue("title_sesa_status", String.class));

        // a list of strings is one text, as a text field takes it
        assertEquals(List.of(3f, 1f), out[2].getIngestDocument().getFieldValue("body_sesa_dense", List.class));
    }

    @Test
    void eachConceptSpaceIsEncodedInItsOwnCall() throws Exception {
        SesaTextIngestProcessor p = processorFor(
            "{\"properties\": {\"body\": {\"type\": \"sesa_text\", \"concept_space\": \"esco\"}, \"title\": {\"type\": \"sesa_text\", \"concept_space\": \"onet\"}}}"
        );
        IngestDocumentWrapper[] out = run(p, doc("1", "body", "b", "title", "t"));
        assertNull(out[0].getException());
        assertEquals(2, service.encoding.calls.get());
        assertEquals(List.of("esco", "onet"), service.encoding.requests.stream().map(r -> r.getOptions().getConceptSpace()).sorted().toList());
        assertEquals("encoded", out[0].getIngestDocument().getFieldValue("body_sesa_status", String.class));
        assertEquals("encoded", out[0].getIngestDocument().getFieldValue("title_sesa_status", String.class));
    }

    @Test
    void aFieldWithChunkingIsEncodedWindowByWindowInACallOfItsOwn() throws Exception {
        // every text: windows [0, 2) along (1, 0) and [1, end) along (0, 1); their mean (0.7, 0.7) as the whole
        service.embedder = text -> org.sesa.inference.v1.Embedding.newBuilder()
            .addDense(0.7f)
            .addDense(0.7f)
            .addConcepts(org.sesa.inference.v1.Concept.newBuilder().setKey("c1").setWeight(0.9f))
            .addWindows(org.sesa.inference.v1.Window.newBuilder().addDense(1f).addDense(0f).setStartChar(0).setEndChar(2).setNumTokens(1))
            .addWindows(org.sesa.inference.v1.Window.newBuilder().addDense(0f).addDense(1f).setStartChar(1).setEndChar(text.length()).setNumTokens(2))
            .setCoverage(1f)
            .build();
        SesaTextIngestProcessor p = processorFor(
            "{\"properties\": {\"body\": {\"type\": \"sesa_text\", \"chunking\": {\"window_tokens\": 0, \"overlap_tokens\": 32, \"max_windows\": 8}},"
                + " \"title\": {\"type\": \"sesa_text\"}}}"
        );
        assertEquals(2, p.encoders().size(), "one encoder per concept space and chunking");
        IngestDocumentWrapper[] out = run(p, doc("1", "body", "long body", "title", "hi"));
        assertNull(out[0].getException(), () -> "unexpected: " + out[0].getException());
        assertEquals(2, service.encoding.calls.get());
        EncodeRequest chunked = service.encoding.requests.stream().filter(r -> r.getOptions().hasChunking()).findFirst().orElseThrow();
        assertEquals(List.of("long body"), chunked.getTextsList());
        assertEquals(8, chunked.getOptions().getChunking().getMaxWindows());
        assertEquals(32, chunked.getOptions().getChunking().getOverlapTokens());
        EncodeRequest whole = service.encoding.requests.stream().filter(r -> r.getOptions().hasChunking() == false).findFirst().orElseThrow();
        assertEquals(List.of("hi"), whole.getTextsList());

        IngestDocument d = out[0].getIngestDocument();
        assertEquals(List.of(1f, 0f), d.getFieldValue("body_sesa_dense", List.class), "the first window, as sesa_encode writes it");
        List<?> windows = d.getFieldValue("body_sesa_chunks", List.class);
        assertEquals(2, windows.size());
        assertEquals(Map.of("dense", List.of(0f, 1f), "start", 1, "end", "long body".length()), Map.copyOf((Map<?, ?>) windows.get(1)));
        assertEquals(1f, d.getFieldValue("body_sesa_coverage", Float.class));
        assertEquals(List.of(0.7f, 0.7f), d.getFieldValue("title_sesa_dense", List.class), "no chunking: the whole text's vector");
        assertFalse(d.hasField("title_sesa_chunks"));
        assertFalse(d.hasField("title_sesa_coverage"));
    }

    @Test
    void aFailedEncodeFailsTheDocumentWithItsReason() throws Exception {
        SesaTextIngestProcessor p = processorFor("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}}}");
        IngestDocumentWrapper[] out = run(p, doc("1", "body", "bad"), doc("2", "body", "fine"), doc("3", "body", 42));
        assertTrue(out[0].getException().getMessage().contains("[sesa_text] inference server rejected the text of [body] for target [body_sesa]"));
        assertFalse(out[0].getIngestDocument().hasField("body_sesa_dense"), "nothing is indexed without its vectors");
        assertNull(out[1].getException());
        assertTrue(out[2].getException().getMessage().contains("field [body] of document [3] must be a string or a list of strings"));

        service.encoding.failNext(io.grpc.Status.UNAVAILABLE.withDescription("down"), 1);
        IngestDocumentWrapper[] down = run(p, doc("4", "body", "x"));
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(down[0].getException()));
    }

    @Test
    void theModelGuardAndTheMappingCheckApply() throws Exception {
        SesaTextIngestProcessor p = processorFor("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}}}");
        expectedModels = Map.of("dense", "older@0");
        IngestDocumentWrapper[] out = run(p, doc("1", "body", "x"));
        assertTrue(out[0].getException().getMessage().contains("was built with models {dense=older@0} for target [body_sesa]"), out[0].getException().getMessage());

        expectedModels = null;
        targetMappings = (index, names) -> MappingVerdict.of("index [" + index + "]", Map.of(), names, null);
        out = run(p, doc("2", "body", "x"));
        String msg = out[0].getException().getMessage();
        assertTrue(msg.contains("[sesa_text] index [docs] cannot hold the SESA fields of target [body_sesa]"), msg);
        assertTrue(msg.contains("[body_sesa_dense] is not mapped"), msg);
        assertTrue(msg.contains("do not map them yourself"), msg);
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(out[0].getException()));
    }

    @Test
    void aSingleDocumentGoesThroughTheAsyncPath() throws Exception {
        SesaTextIngestProcessor p = processorFor("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}}}");
        CompletableFuture<IngestDocument> f = new CompletableFuture<>();
        p.execute(doc("1", "body", "solo"), (d, e) -> {
            if (e != null) {
                f.completeExceptionally(e);
            } else {
                f.complete(d);
            }
        });
        assertEquals("encoded", f.get(10, TimeUnit.SECONDS).getFieldValue("body_sesa_status", String.class));
    }
}
