package org.sesa.opensearch.search.executors;

import org.junit.jupiter.api.Test;
import org.opensearch.ExceptionsHelper;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.core.rest.RestStatus;
import org.sesa.inference.v1.ModelRef;
import org.sesa.opensearch.index.IndexSesaMeta;
import org.sesa.opensearch.search.QueryEncodingException;
import org.sesa.opensearch.search.SearchTestSupport;
import org.sesa.opensearch.search.SesaQueryTestCase;
import org.sesa.opensearch.search.processor.SesaQueryProcessor;
import org.sesa.opensearch.search.processor.SesaQueryProcessorFactory;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.index.IndexMetaFixtures.index;
import static org.sesa.opensearch.index.IndexMetaFixtures.modelsMeta;
import static org.sesa.opensearch.index.IndexMetaFixtures.state;

/**
 * {@code sesa_query} checks the models of the query encoding against what the target indices record
 * ({@code _meta.sesa.models.<prefix>}, written at ingest), as {@code sesa_encode} checks a document's: query vectors of
 * one model are never compared with document vectors of another. The fake server encodes with fake-dense@1 and
 * fake-concepts@2 unless a test "deploys" another model.
 */
class QueryModelCheckTests extends SesaQueryTestCase {

    static final String FAKE_MODELS = "{\"dense\": \"fake-dense@1\", \"concepts\": \"fake-concepts@2\"}";

    private final AtomicReference<ClusterState> cluster = new AtomicReference<>(state());
    private final IndexSesaMeta meta = new IndexSesaMeta(cluster::get);

    /** The cluster's indices from now on, with a new metadata version (as a node's state after a change). */
    void indices(IndexMetadata... indices) {
        cluster.set(state(cluster.get().metadata().version() + 1, indices));
    }

    static IndexMetadata recording(String name, String modelsJson) {
        return recording(name, 1, modelsJson);
    }

    /** {@code mappingVersion}: a new record is a mapping update, which bumps it. */
    static IndexMetadata recording(String name, long mappingVersion, String modelsJson) {
        return index(name, mappingVersion, modelsJson == null ? null : modelsMeta("sesa", modelsJson), null);
    }

    /** A {@code sesa_query} that checks the models recorded in {@link #cluster}. */
    SesaQueryProcessor checked() {
        return new SesaQueryProcessorFactory(fake::client, searcher, SearchTestSupport.registry(), meta).create(Map.of(), "t", null, false, new HashMap<>(), null);
    }

    static SearchRequest search(String extJson, String... indices) {
        return new SearchRequest(indices, source(ext(extJson)));
    }

    void deploy(String denseVersion) {
        service.denseModel = ModelRef.newBuilder().setId("fake-dense").setVersion(denseVersion).build();
    }

    @Test
    void anEncodingOfTheRecordedModelsIsUsed() throws Exception {
        indices(recording("sesa-test", FAKE_MODELS));
        Result r = run(checked(), search("{\"query_text\": \"python\"}", "sesa-test"));
        assertNotNull(r.plan().encoding());
        assertNotNull(sides(r).get(), "the vector branches ran");
        assertEquals(1, searcher.requests.size());
    }

    @Test
    void anEncodingOfAnotherModelRefusesTheSearch() throws Exception {
        indices(recording("sesa-test", "{\"dense\": \"fake-dense@0\", \"concepts\": \"fake-concepts@2\"}"));
        SesaQueryProcessor p = checked();

        Exception dense = failure(p, search("{\"query_text\": \"python\", \"mode\": \"dense\"}", "sesa-test"));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(dense));
        String m = dense.getMessage();
        for (String part : new String[] { "index [sesa-test]", "fake-dense@0", "fake-dense@1", "target [sesa]", "_meta.sesa.models.sesa", "re-index", "serve the recorded models" }) {
            assertTrue(m.contains(part), part + " in " + m);
        }

        // hybrid: the BM25 branch already started, the search is refused all the same (not degraded to BM25)
        Exception hybrid = failure(p, search("{\"query_text\": \"python\"}", "sesa-test"));
        assertInstanceOf(QueryEncodingException.class, hybrid);
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(hybrid));
        assertTrue(hybrid.getMessage().contains("fake-dense@0"), hybrid.getMessage());
        assertTrue(searcher.requests.isEmpty(), "no vector branch ran");
        assertEquals(0, p.cache().size(), "a refused encoding is not cached");

        // bm25 compares no vector: it runs as ever
        Result bm25 = run(p, search("{\"query_text\": \"python\", \"mode\": \"bm25\"}", "sesa-test"));
        assertEquals(2, service.encoding.calls.get(), "no Encode call for bm25");
        assertNotNull(bm25.request());
    }

    @Test
    void onlyTheRolesTheRecordNamesAreChecked() throws Exception {
        indices(recording("dense-only", "\"fake-dense@1\""), recording("concepts-other", "{\"concepts\": \"other-concepts@7\"}"));
        SesaQueryProcessor p = checked();
        assertNotNull(run(p, search("{\"query_text\": \"python\"}", "dense-only")).plan().encoding(), "a string names the dense model alone");
        Exception e = failure(p, search("{\"query_text\": \"python\"}", "concepts-other"));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(e));
        assertTrue(e.getMessage().contains("other-concepts@7") && e.getMessage().contains("fake-concepts@2"), e.getMessage());
    }

    @Test
    void theCacheDoesNotServeAnEncodingMadeWithAnotherModel() throws Exception {
        // "old" was encoded with fake-dense@1; the server now runs fake-dense@2; "fresh" records nothing
        indices(recording("old", "{\"dense\": \"fake-dense@1\"}"), recording("fresh", null));
        deploy("2");
        SesaQueryProcessor p = checked();
        assertNotNull(run(p, search("{\"query_text\": \"python\", \"mode\": \"dense\"}", "fresh")).plan().encoding());
        assertEquals(1, service.encoding.calls.get());

        // keyed by text alone, the cache would hand "old" the fake-dense@2 vector of "fresh"'s search
        Exception e = failure(p, search("{\"query_text\": \"python\", \"mode\": \"dense\"}", "old"));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(e));
        assertEquals(2, service.encoding.calls.get(), "not served from the cache");
        assertTrue(e.getMessage().contains("fake-dense@2"), e.getMessage());

        // re-indexed with the server's model: a new record (and metadata version), a new key, the same text
        indices(recording("old", 2, "{\"dense\": \"fake-dense@2\"}"), recording("fresh", null));
        Result reindexed = run(p, search("{\"query_text\": \"python\", \"mode\": \"dense\"}", "old"));
        assertEquals("fake-dense@2", reindexed.plan().encoding().denseModel());
        assertFalse(reindexed.plan().encodingCached());
        assertEquals(3, service.encoding.calls.get());
        Result again = run(p, search("{\"query_text\": \"python\", \"mode\": \"dense\"}", "old"));
        assertTrue(again.plan().encodingCached(), "an encoding that matched the record is cached under it");
        assertEquals(3, service.encoding.calls.get());
    }

    @Test
    void indicesWithoutARecordAreSearchedAsBefore() throws Exception {
        indices(recording("sesa-test", null), index("other-meta", "{\"owner\": \"x\"}"));
        deploy("9"); // whatever the server runs
        SesaQueryProcessor p = checked();
        for (String index : new String[] { "sesa-test", "other-meta", "not-in-the-cluster-state", "remote:sesa-test" }) {
            Result r = run(p, search("{\"query_text\": \"python\"}", index));
            assertNotNull(r.plan().encoding(), index);
            assertNotNull(sides(r).get(), index);
        }
        assertEquals(1, service.encoding.calls.get(), "one record (none), one text: one cache entry");
        assertEquals(3, p.cache().hits());
    }

    @Test
    void targetIndicesWithDifferentRecordsAreRefused() throws Exception {
        indices(
            recording("idx-a", "{\"dense\": \"fake-dense@1\"}"),
            recording("idx-b", "{\"dense\": \"fake-dense@0\"}"),
            recording("idx-c", "{\"dense\": \"fake-dense@1\", \"concepts\": \"fake-concepts@2\"}"),
            recording("idx-none", null)
        );
        SesaQueryProcessor p = checked();
        for (SearchRequest r : new SearchRequest[] {
            search("{\"query_text\": \"python\"}", "idx-a", "idx-b"),
            search("{\"query_text\": \"python\"}", "idx-*") }) {
            Exception e = failure(p, r);
            assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(e));
            String m = e.getMessage();
            assertTrue(m.contains("different models") && m.contains("[idx-a] {dense=fake-dense@1}") && m.contains("[idx-b] {dense=fake-dense@0}"), m);
            assertTrue(m.contains("separate requests"), m);
        }
        assertEquals(0, service.encoding.calls.get(), "refused before any Encode call");

        // records that agree (one naming a role the other leaves out), and an index without one, are searched together
        assertNotNull(run(p, search("{\"query_text\": \"python\"}", "idx-a", "idx-c", "idx-none")).plan().encoding());
        deploy("0");
        Exception e = failure(p, search("{\"query_text\": \"sql\"}", "idx-c", "idx-none"));
        assertTrue(e.getMessage().contains("index [idx-c]"), e.getMessage());
    }
}
