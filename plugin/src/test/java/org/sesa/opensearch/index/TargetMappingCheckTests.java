package org.sesa.opensearch.index;

import org.junit.jupiter.api.Test;
import org.opensearch.cluster.ClusterState;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.index.MappingFixtures.component;
import static org.sesa.opensearch.index.MappingFixtures.composable;
import static org.sesa.opensearch.index.MappingFixtures.index;
import static org.sesa.opensearch.index.MappingFixtures.json;
import static org.sesa.opensearch.index.MappingFixtures.legacy;
import static org.sesa.opensearch.index.MappingFixtures.mapping;
import static org.sesa.opensearch.index.MappingFixtures.sesaProperties;
import static org.sesa.opensearch.index.MappingFixtures.sesaTemplateMapping;
import static org.sesa.opensearch.index.MappingFixtures.state;
import static org.sesa.opensearch.index.MappingFixtures.with;

/**
 * The mapping check of {@code sesa_encode} and the sesa_text processor: whether the index a document goes to (or the
 * template that will create it) maps every SESA output field as it must be, read from the cluster state and cached per
 * index UUID and mapping version.
 */
class TargetMappingCheckTests {

    private static final SesaFieldNames SESA = SesaFieldNames.forPrefix("sesa");

    private final AtomicReference<ClusterState> cluster = new AtomicReference<>(state(1, List.of()));
    private final TargetMappingCheck check = new TargetMappingCheck(cluster::get);

    private void cluster(long version, List<org.opensearch.cluster.metadata.IndexMetadata> indices, MappingFixtures.Put... templates) {
        cluster.set(state(version, indices, templates));
    }

    private static void assertProblems(MappingVerdict v, String... fragments) {
        assertFalse(v.fits(), "expected problems");
        String all = String.join("; ", v.problems());
        for (String f : fragments) {
            assertTrue(all.contains(f), () -> "[" + all + "] should contain [" + f + "]");
        }
    }

    @Test
    void theSesaTemplateMappingFits() {
        cluster(1, List.of(index("sesa-docs", sesaTemplateMapping(384))));
        MappingVerdict v = check.verdict("sesa-docs", SESA);
        assertTrue(v.fits(), () -> v.problems().toString());
        assertEquals(384, v.dimension());
        assertEquals("index [sesa-docs]", v.where());
        assertNull(v.dimensionProblem("sesa_dense", 384));
    }

    @Test
    void theSesaTemplateMappingHoldsChunks() {
        cluster(1, List.of(index("sesa-docs", sesaTemplateMapping(384))));
        MappingVerdict v = check.verdict("sesa-docs", SESA, true);
        assertTrue(v.fits(), () -> v.problems().toString());
        assertEquals(384, v.dimension());
    }

    @Test
    void chunksAreRequiredOnlyWithChunking() {
        Map<String, Object> props = MappingFixtures.sesaProperties("sesa", 384);
        cluster(1, List.of(index("plain", Map.of("properties", props))));
        assertTrue(check.verdict("plain", SESA).fits());
        assertTrue(check.verdict("plain", SESA, false).fits());
        assertProblems(
            check.verdict("plain", SESA, true),
            "[sesa_chunks] is not mapped, must be [nested] with [dense] a [knn_vector]",
            "[sesa_coverage] is not mapped, must be [float]"
        );
    }

    @Test
    void badChunkMappingsNameEachField() {
        Map<String, Object> props = new java.util.LinkedHashMap<>(MappingFixtures.sesaProperties("sesa", 384));
        props.put(
            "sesa_chunks",
            MappingFixtures.json(
                "{\"type\":\"nested\",\"properties\":{\"dense\":{\"type\":\"knn_vector\",\"dimension\":128,"
                    + "\"method\":{\"name\":\"hnsw\",\"engine\":\"faiss\"}},\"start\":{\"type\":\"long\"}}}"
            )
        );
        props.put("sesa_coverage", Map.of("type", "double"));
        Map<String, Object> objectChunks = new java.util.LinkedHashMap<>(props);
        objectChunks.put("sesa_chunks", MappingFixtures.json("{\"properties\":{\"start\":{\"type\":\"integer\"}}}"));
        cluster(1, List.of(index("bad", Map.of("properties", props)), index("object", Map.of("properties", objectChunks))));
        assertProblems(
            check.verdict("bad", SESA, true),
            "[sesa_chunks.dense] is a knn_vector with method.engine [faiss]",
            "[sesa_chunks.dense] is a knn_vector of dimension [128], must have the dimension of [sesa_dense] [384]",
            "[sesa_chunks.start] is mapped as [long], must be [integer]",
            "[sesa_chunks.end] is not mapped, must be [integer]",
            "[sesa_coverage] is mapped as [double], must be [float]"
        );
        assertProblems(check.verdict("object", SESA, true), "[sesa_chunks] is mapped as [object]", "must be [nested]");
    }

    @Test
    void anIndexWithoutMappingNamesEveryField() {
        cluster(1, List.of(index("my-docs", null)));
        MappingVerdict v = check.verdict("my-docs", SESA);
        assertProblems(
            v,
            "index [my-docs] has no mapping",
            "[sesa_dense] is not mapped, must be [knn_vector] with method.engine [lucene]",
            "[sesa_concepts] is not mapped, must be [rank_features]",
            "[sesa_concept_labels] is not mapped, must be [keyword]",
            "[sesa_model.dense] is not mapped, must be [keyword]",
            "[sesa_model.concepts] is not mapped, must be [keyword]",
            "[sesa_truncated] is not mapped, must be [boolean]",
            "[sesa_status] is not mapped, must be [keyword]"
        );
        assertNull(v.dimension());
    }

    /** What issue 21 found: an index whose SESA fields were mapped dynamically by the first documents. */
    @Test
    void dynamicallyMappedFieldsAreWrongTypes() {
        Map<String, Object> dynamic = json(
            "{\"properties\": {"
                + "\"text\": {\"type\": \"text\"},"
                + "\"sesa_dense\": {\"type\": \"float\"},"
                + "\"sesa_concepts\": {\"properties\": {\"k_python\": {\"type\": \"float\"}}},"
                + "\"sesa_concept_labels\": {\"type\": \"text\", \"fields\": {\"keyword\": {\"type\": \"keyword\"}}},"
                + "\"sesa_model\": {\"properties\": {\"dense\": {\"type\": \"text\"}, \"concepts\": {\"type\": \"keyword\"}}},"
                + "\"sesa_truncated\": {\"type\": \"boolean\"},"
                + "\"sesa_status\": {\"type\": \"keyword\"}}}"
        );
        cluster(1, List.of(index("my-docs", dynamic)));
        MappingVerdict v = check.verdict("my-docs", SESA);
        assertProblems(
            v,
            "[sesa_dense] is mapped as [float], must be [knn_vector]",
            "[sesa_concepts] is mapped as [object], must be [rank_features] (mapped dynamically, every concept key would become a float field",
            "[sesa_concept_labels] is mapped as [text], must be [keyword]",
            "[sesa_model.dense] is mapped as [text], must be [keyword]"
        );
        assertEquals(4, v.problems().size(), v.problems().toString());
    }

    @Test
    void aDenseFieldOfAnotherDimensionFitsTheMappingButNotTheVectors() {
        cluster(1, List.of(index("sesa-docs", mapping(sesaProperties("sesa", 384)))));
        MappingVerdict v = check.verdict("sesa-docs", SESA);
        assertTrue(v.fits());
        assertEquals(
            "[sesa_dense] is a knn_vector of dimension [384], but the inference server's encoder makes vectors of dimension [768]",
            v.dimensionProblem("sesa_dense", 768)
        );
        assertNull(v.dimensionProblem("sesa_dense", 384));
    }

    @Test
    void aDenseFieldOfAnotherEngineDoesNotFit() {
        Map<String, Object> base = sesaProperties("sesa", 2);
        cluster(
            1,
            List.of(
                index("faiss", mapping(with(base, "sesa_dense", json("{\"type\": \"knn_vector\", \"dimension\": 2, \"method\": {\"name\": \"hnsw\", \"engine\": \"faiss\"}}")))),
                index("default-engine", mapping(with(base, "sesa_dense", json("{\"type\": \"knn_vector\", \"dimension\": 2}")))),
                index("no-dimension", mapping(with(base, "sesa_dense", json("{\"type\": \"knn_vector\", \"model_id\": \"m\"}"))))
            )
        );
        assertProblems(check.verdict("faiss", SESA), "[sesa_dense] is a knn_vector with method.engine [faiss], must have method.engine [lucene]");
        assertProblems(check.verdict("default-engine", SESA), "no method.engine (the k-NN default engine is faiss)");
        assertProblems(check.verdict("no-dimension", SESA), "without a dimension", "a model_id instead of a method");
    }

    @Test
    void anAliasIsCheckedThroughItsWriteIndex() {
        cluster(1, List.of(index("docs-1", 1, mapping(sesaProperties("sesa", 2)), "docs")));
        MappingVerdict v = check.verdict("docs", SESA);
        assertTrue(v.fits(), v.problems()::toString);
        assertEquals("index [docs-1]", v.where());
    }

    @Test
    void anIndexNotCreatedYetIsCheckedAgainstTheComposableTemplateThatWouldCreateIt() {
        cluster(
            1,
            List.of(),
            component("sesa-fields", mapping(sesaProperties("sesa", 2))),
            composable("sesa-template", "sesa-*", mapping(Map.of("text", Map.of("type", "text"))), "sesa-fields"),
            composable("logs", "logs-*", mapping(Map.of("message", Map.of("type", "text"))))
        );
        MappingVerdict v = check.verdict("sesa-new", SESA);
        assertTrue(v.fits(), v.problems()::toString);
        assertEquals(2, v.dimension());
        assertTrue(v.where().contains("index template [sesa-template] would map it"), v.where());

        MappingVerdict logs = check.verdict("logs-new", SESA);
        assertProblems(logs, "[sesa_dense] is not mapped", "[sesa_concepts] is not mapped");
        assertTrue(logs.where().contains("index template [logs]"), logs.where());
    }

    @Test
    void anIndexNotCreatedYetWithoutATemplateWouldBeMappedDynamically() {
        cluster(1, List.of(), composable("logs", "logs-*", mapping(sesaProperties("sesa", 2))));
        MappingVerdict v = check.verdict("my-docs", SESA);
        assertProblems(
            v,
            "index [my-docs] does not exist and no index template matches its name, so it would be created with dynamic mappings",
            "[sesa_dense] is not mapped"
        );
    }

    @Test
    void legacyTemplatesAreFoldedInOrder() {
        Map<String, Object> wrongDense = with(sesaProperties("sesa", 2), "sesa_dense", Map.of("type", "float"));
        cluster(1, List.of(), legacy("low", "old-*", 0, wrongDense), legacy("high", "old-*", 5, sesaProperties("sesa", 2)));
        MappingVerdict v = check.verdict("old-docs", SESA);
        assertTrue(v.fits(), v.problems()::toString);
        assertTrue(v.where().contains("legacy index templates [low, high]"), v.where());

        cluster(2, List.of(), legacy("low", "old-*", 9, wrongDense), legacy("high", "old-*", 5, sesaProperties("sesa", 2)));
        assertProblems(check.verdict("old-docs", SESA), "[sesa_dense] is mapped as [float]");
    }

    @Test
    void theVerdictIsCachedPerMappingVersionAndAMappingChangeIsCheckedAgain() {
        cluster(1, List.of(index("my-docs", 1, mapping(Map.of("text", Map.of("type", "text"))), null)));
        MappingVerdict first = check.verdict("my-docs", SESA);
        assertFalse(first.fits());
        cluster(2, List.of(index("my-docs", 1, mapping(Map.of("text", Map.of("type", "text"))), null)));
        assertSame(first, check.verdict("my-docs", SESA), "same index, same mapping version: the cached verdict");

        // the mapping is fixed (a mapping update bumps the mapping version)
        cluster(3, List.of(index("my-docs", 2, mapping(sesaProperties("sesa", 2)), null)));
        MappingVerdict second = check.verdict("my-docs", SESA);
        assertNotSame(first, second);
        assertTrue(second.fits(), second.problems()::toString);

        // another prefix of the same index has a verdict of its own
        assertFalse(check.verdict("my-docs", SesaFieldNames.forPrefix("other")).fits());
    }

    @Test
    void nothingIsCheckedWithoutAClusterState() {
        TargetMappingCheck none = new TargetMappingCheck(() -> null);
        assertTrue(none.verdict("anything", SESA).fits());
    }

    @Test
    void prefixesWithDotsAreLookedUpThroughObjects() {
        Map<String, Object> nested = mapping(Map.of("doc", mapping(sesaProperties("body_sesa", 2))));
        cluster(1, List.of(index("docs", nested)));
        MappingVerdict v = check.verdict("docs", SesaFieldNames.forPrefix("doc.body_sesa"));
        assertTrue(v.fits(), v.problems()::toString);
    }
}
