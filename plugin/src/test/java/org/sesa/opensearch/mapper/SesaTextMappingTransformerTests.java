package org.sesa.opensearch.mapper;

import io.grpc.Status;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.opensearch.core.action.ActionListener;
import org.opensearch.index.mapper.MapperParsingException;
import org.sesa.inference.v1.ConceptSpaceInfo;
import org.sesa.inference.v1.ModelRef;
import org.sesa.opensearch.FakeInference;
import org.sesa.opensearch.FakeInferenceFixture;
import org.sesa.opensearch.index.MappingVerdict;
import org.sesa.opensearch.inference.Endpoint;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.index.MappingFixtures.json;

/**
 * The mapping transformer of {@code sesa_text}: the sibling fields it adds (the dimension from the server's Info),
 * the models it records, and the mapping errors it gives when it cannot.
 */
class SesaTextMappingTransformerTests {

    @RegisterExtension
    final FakeInferenceFixture fake = new FakeInferenceFixture(b -> b.maxRetries(() -> 0));
    private final FakeInference service = fake.service;

    private Map<String, Object> transform(Map<String, Object> mapping) throws Exception {
        return transform(mapping, fake::client);
    }

    private static Map<String, Object> transform(Map<String, Object> mapping, Supplier<InferenceClient> client) throws Exception {
        CompletableFuture<Void> done = new CompletableFuture<>();
        new SesaTextMappingTransformer(client).transform(mapping, null, ActionListener.wrap(done::complete, done::completeExceptionally));
        done.get(10, TimeUnit.SECONDS);
        return mapping;
    }

    private Exception failure(Map<String, Object> mapping) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> transform(mapping));
        return (Exception) e.getCause();
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> at(Map<String, Object> map, String... keys) {
        Map<String, Object> m = map;
        for (String k : keys) {
            m = (Map<String, Object>) m.get(k);
        }
        return m;
    }

    @Test
    void addsTheSiblingsOfASesaTextFieldWithTheServersDimensionAndRecordsItsModels() throws Exception {
        service.encoderDimension = 2;
        Map<String, Object> mapping = transform(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}, \"lang\": {\"type\": \"keyword\"}}}"));
        Map<String, Object> properties = at(mapping, "properties");
        assertEquals(Map.of("type", "sesa_text"), properties.get("body"), "the field itself is left as it is");
        assertEquals(
            Map.of(
                "type",
                "knn_vector",
                "dimension",
                2,
                "method",
                Map.of("name", "hnsw", "engine", "lucene", "space_type", "cosinesimil", "parameters", Map.of("m", 16, "ef_construction", 128))
            ),
            properties.get("body_sesa_dense")
        );
        assertEquals(Map.of("type", "rank_features"), properties.get("body_sesa_concepts"));
        assertEquals(Map.of("type", "keyword"), properties.get("body_sesa_concept_labels"));
        assertEquals(Map.of("properties", Map.of("dense", Map.of("type", "keyword"), "concepts", Map.of("type", "keyword"))), properties.get("body_sesa_model"));
        assertEquals(Map.of("type", "boolean"), properties.get("body_sesa_truncated"));
        assertEquals(Map.of("type", "keyword"), properties.get("body_sesa_status"));
        assertEquals(Map.of("dense", "fake-dense@1", "concepts", "fake-concepts@2"), at(mapping, "_meta", "sesa", "models", "body_sesa"));

        // what it adds is what the ingest mapping check asks for
        MappingVerdict v = MappingVerdict.of("index [x]", properties, SesaFieldNames.forPrefix("body_sesa"), null);
        assertTrue(v.fits(), v.problems()::toString);
        assertEquals(2, v.dimension());
        assertEquals(1, service.infoCalls.get());
        assertEquals(1, service.encoding.calls.get(), "one probe per concept space");
        assertEquals("", service.encoding.requests.get(0).getOptions().getConceptSpace());
    }

    @Test
    void theDimensionComesFromInfo() throws Exception {
        service.encoderDimension = 384;
        service.embedder = text -> org.sesa.inference.v1.Embedding.newBuilder().addAllDense(java.util.Collections.nCopies(384, 0.1f)).build();
        Map<String, Object> mapping = transform(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}}}"));
        assertEquals(384, at(mapping, "properties", "body_sesa_dense").get("dimension"));
    }

    @Test
    void aMappingUnderDocNestedObjectsAndSeveralConceptSpaces() throws Exception {
        service.conceptSpaces = List.of(
            ConceptSpaceInfo.newBuilder().setName("esco").setVersion("1").build(),
            ConceptSpaceInfo.newBuilder().setName("onet").setVersion("3").build()
        );
        service.embedder = null;
        Map<String, Object> mapping = json(
            "{\"_doc\": {\"_meta\": {\"owner\": \"me\", \"sesa\": {\"models\": {\"title_sesa\": {\"dense\": \"old@0\"}}}}, \"properties\": {"
                + "\"title\": {\"type\": \"sesa_text\"},"
                + "\"doc\": {\"properties\": {\"body\": {\"type\": \"sesa_text\", \"concept_space\": \"onet\"}}},"
                + "\"abstract\": {\"type\": \"sesa_text\", \"concept_space\": \"esco\"}}}}"
        );
        transform(mapping);
        Map<String, Object> doc = at(mapping, "_doc");
        assertEquals("knn_vector", at(doc, "properties", "title_sesa_dense").get("type"));
        assertEquals("knn_vector", at(doc, "properties", "doc", "properties", "body_sesa_dense").get("type"), "siblings sit next to the field");
        assertEquals("rank_features", at(doc, "properties", "abstract_sesa_concepts").get("type"));
        Map<String, Object> models = at(doc, "_meta", "sesa", "models");
        assertEquals(Map.of("dense", "old@0"), models.get("title_sesa"), "a record the request carries is kept");
        assertEquals(Map.of("dense", "fake-dense@1", "concepts", "fake-concepts@2"), models.get("doc.body_sesa"));
        assertEquals("me", at(doc, "_meta").get("owner"), "the rest of _meta is kept");
        assertEquals(
            List.of("", "esco", "onet"),
            service.encoding.requests.stream().map(r -> r.getOptions().getConceptSpace()).toList(),
            "one probe per concept space, each in its space"
        );
    }

    @Test
    void theRecordedConceptModelIsTheOneTheServerReportsForTheSpace() throws Exception {
        service.conceptModel = ModelRef.newBuilder().setId("onet").setVersion("3").build();
        Map<String, Object> mapping = transform(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\", \"concept_space\": \"onet\"}}}"));
        assertEquals(Map.of("dense", "fake-dense@1", "concepts", "onet@3"), at(mapping, "_meta", "sesa", "models", "body_sesa"));
    }

    @Test
    void aMappingWithoutSesaTextIsLeftAloneWithoutCallingTheServer() throws Exception {
        Map<String, Object> mapping = json("{\"properties\": {\"text\": {\"type\": \"text\"}}}");
        Map<String, Object> before = json("{\"properties\": {\"text\": {\"type\": \"text\"}}}");
        assertEquals(before, transform(mapping));
        assertEquals(0, service.infoCalls.get());
        assertEquals(0, service.encoding.calls.get());
        assertEquals(Map.of(), transform(json("{}")));
    }

    @Test
    void anUnreachableServerIsAMappingError() throws Exception {
        InferenceClient down = FakeInference.client(List.of(new Endpoint("nobody-listens-here", 1)), FakeInference.IN_PROCESS_CHANNELS)
            .maxRetries(() -> 0)
            .build();
        try {
            ExecutionException e = assertThrows(
                ExecutionException.class,
                () -> transform(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}}}"), () -> down)
            );
            MapperParsingException cause = assertInstanceOf(MapperParsingException.class, e.getCause());
            assertTrue(cause.getMessage().contains("sesa_text field [body]: cannot map the SESA fields without the inference server"), cause.getMessage());
            assertTrue(cause.getMessage().contains("sesa.inference.endpoints"), cause.getMessage());
        } finally {
            down.close();
        }
        Exception notYet = assertThrows(
            ExecutionException.class,
            () -> transform(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}}}"), () -> {
                throw new IllegalStateException("sesa inference client is not initialised yet");
            })
        );
        assertTrue(notYet.getCause().getMessage().contains("not initialised yet"), notYet.getCause().getMessage());
    }

    @Test
    void aFailedProbeIsAMappingError() {
        service.encoding.failNext(Status.INVALID_ARGUMENT.withDescription("unknown concept space [x]"), 1);
        Exception e = failure(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\", \"concept_space\": \"x\"}}}"));
        assertInstanceOf(MapperParsingException.class, e);
        assertTrue(e.getMessage().contains("could not encode text in concept space [x]"), e.getMessage());
        assertTrue(e.getMessage().contains("unknown concept space [x]"), e.getMessage());
    }

    @Test
    void aConceptSpaceTheServerDoesNotServeIsRefused() {
        service.conceptSpaces = List.of(ConceptSpaceInfo.newBuilder().setName("esco").build());
        Exception e = failure(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\", \"concept_space\": \"onet\"}}}"));
        assertInstanceOf(MapperParsingException.class, e);
        assertTrue(
            e.getMessage().contains("[concept_space] of sesa_text field [body] is [onet], which the inference server does not serve; it serves [esco]"),
            e.getMessage()
        );
        assertEquals(0, service.encoding.calls.get());
    }

    @Test
    void whatCannotBeMappedIsRefusedBeforeAnyCall() {
        Exception nested = failure(
            json("{\"properties\": {\"items\": {\"type\": \"nested\", \"properties\": {\"body\": {\"type\": \"sesa_text\"}}}}}")
        );
        assertTrue(nested.getMessage().contains("sesa_text field [items.body] is inside a nested field"), nested.getMessage());
        Exception badSpace = failure(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\", \"concept_space\": \"\"}}}"));
        assertTrue(badSpace.getMessage().contains("[concept_space] of sesa_text field [body]"), badSpace.getMessage());
        Exception chunking = failure(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\", \"chunking\": true}}}"));
        assertTrue(chunking.getMessage().contains("[chunking] of sesa_text field [body] must be an object"), chunking.getMessage());
        Exception overlap = failure(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\", \"chunking\": {\"overlap_tokens\": 0}}}}"));
        assertTrue(overlap.getMessage().contains("[chunking.overlap_tokens] of sesa_text field [body] must be at least 1"), overlap.getMessage());
        assertEquals(0, service.infoCalls.get());
    }

    @Test
    void aFieldWithChunkingAlsoGetsTheWindowFieldsTheEncoderChecksFor() throws Exception {
        service.encoderDimension = 2;
        Map<String, Object> mapping = transform(json(
            "{\"properties\": {\"body\": {\"type\": \"sesa_text\", \"chunking\": {\"max_windows\": 8}}, \"title\": {\"type\": \"sesa_text\"}}}"
        ));
        Map<String, Object> properties = at(mapping, "properties");
        Map<String, Object> chunks = at(properties, "body_sesa_chunks");
        assertEquals("nested", chunks.get("type"));
        assertEquals(properties.get("body_sesa_dense"), at(chunks, "properties", "dense"), "the windows' vectors are mapped like the single vector");
        assertEquals(Map.of("type", "integer"), at(chunks, "properties", "start"));
        assertEquals(Map.of("type", "integer"), at(chunks, "properties", "end"));
        assertEquals(Map.of("type", "float"), properties.get("body_sesa_coverage"));
        assertFalse(properties.containsKey("title_sesa_chunks"), "a field without chunking gets no window fields");
        assertFalse(properties.containsKey("title_sesa_coverage"));
        // what sesa_encode's mapping check asks of a chunked encoding (the system processor runs the same check)
        MappingVerdict verdict = MappingVerdict.of(
            "index [i]",
            properties,
            org.sesa.opensearch.util.SesaFieldNames.forPrefix("body_sesa"),
            null,
            true
        );
        assertTrue(verdict.fits(), String.valueOf(verdict.problems()));
    }

    @Test
    void aServerWithoutAnEncoderDimensionIsAMappingError() {
        service.encoderDimension = 0;
        Exception e = failure(json("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}}}"));
        assertTrue(e.getMessage().contains("reports no encoder with a dimension"), e.getMessage());
    }

    @Test
    void existingSiblingsAreReplacedByWhatTheServerDictates() throws Exception {
        Map<String, Object> mapping = transform(
            json("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}, \"body_sesa_dense\": {\"type\": \"float\"}}}")
        );
        assertEquals("knn_vector", at(mapping, "properties", "body_sesa_dense").get("type"));
        assertNull(at(mapping, "properties").get("body_sesa_dense.x"));
    }
}
