package org.sesa.opensearch.search.executors;

import org.junit.jupiter.api.Test;
import org.opensearch.ExceptionsHelper;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.index.query.BoolQueryBuilder;
import org.opensearch.index.query.DisMaxQueryBuilder;
import org.opensearch.index.query.MultiMatchQueryBuilder;
import org.sesa.opensearch.index.IndexSesaMeta;
import org.sesa.opensearch.index.MappingFixtures;
import org.sesa.opensearch.search.SearchTestSupport;
import org.sesa.opensearch.search.SesaQueryTestCase;
import org.sesa.opensearch.search.processor.SesaQueryProcessor;
import org.sesa.opensearch.search.processor.SesaQueryProcessorFactory;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.index.MappingFixtures.json;

/**
 * {@code ext.sesa.field}: a search of a {@code sesa_text} field uses the field for BM25, its {@code <field>_sesa_*}
 * siblings for the vector branches and the model check, encodes the query into the field's concept space, and hands
 * rerank the field's text; a field that is not a sesa_text field of every target index is a 400 naming it.
 */
class SesaTextSearchTests extends SesaQueryTestCase {

    private final AtomicReference<ClusterState> cluster = new AtomicReference<>(MappingFixtures.state(1, List.of()));
    private final IndexSesaMeta meta = new IndexSesaMeta(cluster::get);

    private void indices(IndexMetadata... indices) {
        cluster.set(MappingFixtures.state(cluster.get().metadata().version() + 1, List.of(indices)));
    }

    /** An index with a sesa_text field {@code body} (in {@code space}, when not null), as its transformer maps it. */
    private static IndexMetadata withBody(String name, String space, String modelsJson) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("type", "sesa_text");
        if (space != null) {
            body.put("concept_space", space);
        }
        Map<String, Object> properties = new LinkedHashMap<>(MappingFixtures.sesaProperties("body_sesa", 2));
        properties.put("body", body);
        properties.put("title", Map.of("type", "text"));
        Map<String, Object> mapping = MappingFixtures.mapping(properties);
        if (modelsJson != null) {
            mapping.put("_meta", json("{\"sesa\": {\"models\": {\"body_sesa\": " + modelsJson + "}}}"));
        }
        return MappingFixtures.index(name, mapping);
    }

    private SesaQueryProcessor processor() {
        return new SesaQueryProcessorFactory(fake::client, searcher, SearchTestSupport.registry(), meta, meta).create(
            Map.of(),
            "t",
            null,
            false,
            new HashMap<>(),
            null
        );
    }

    private static SearchRequest search(String extJson, String... indices) {
        return new SearchRequest(indices, source(ext(extJson)));
    }

    @Test
    void aSesaTextFieldIsSearchedWithItsSiblings() throws Exception {
        indices(withBody("docs", "esco", "{\"dense\": \"fake-dense@1\", \"concepts\": \"fake-concepts@2\"}"));
        Result r = run(processor(), search("{\"query_text\": \"python dev\", \"field\": \"body\"}", "docs"));

        assertEquals(1, service.encoding.calls.get());
        assertEquals("esco", service.encoding.requests.get(0).getOptions().getConceptSpace(), "the query goes into the field's concept space");

        MultiMatchQueryBuilder bm25 = assertInstanceOf(MultiMatchQueryBuilder.class, r.request().source().query());
        assertEquals(Map.of("body", 1.0f), bm25.fields(), "BM25 on the field itself");

        String knn = wrapped(searcher.only(0).source().query());
        assertEquals(map("{\"knn\":{\"body_sesa_dense\":{\"vector\":[10.0,1.0],\"k\":100}}}"), map(knn));
        BoolQueryBuilder concepts = assertInstanceOf(BoolQueryBuilder.class, searcher.only(1).source().query());
        assertEquals(map("{\"rank_feature\":{\"field\":\"body_sesa_concepts.k_python_dev\",\"linear\":{},\"boost\":0.5}}"), map(wrapped(concepts.should().get(0))));

        assertEquals("body_sesa", r.plan().names().prefix(), "explanations and evidence read the field's siblings");
        assertEquals(List.of("body"), r.plan().textFields(), "rerank reads the field's text");
    }

    @Test
    void aSesaTextFieldWithChunksIsScoredByItsBestWindowAndNamesItsPassage() throws Exception {
        indices(withBody("docs", null, null));
        SesaQueryProcessor chunked = new SesaQueryProcessorFactory(
            fake::client,
            searcher,
            SearchTestSupport.registry(),
            meta,
            meta,
            (request, field) -> field.equals("body_sesa_chunks")
        ).create(Map.of(), "t", null, false, new HashMap<>(), null);
        Result r = run(chunked, search("{\"query_text\": \"python dev\", \"field\": \"body\", \"mode\": \"dense\"}", "docs"));
        DisMaxQueryBuilder dense = assertInstanceOf(DisMaxQueryBuilder.class, r.request().source().query());
        assertTrue(dense.toString().contains("body_sesa_chunks"), dense.toString());
        assertEquals(List.of("body"), r.plan().chunkTextFields(), "the passage is cut from the field's text");

        Result plain = run(processor(), search("{\"query_text\": \"python dev\", \"field\": \"body\", \"mode\": \"dense\"}", "docs"));
        assertFalse(plain.request().source().query() instanceof DisMaxQueryBuilder, "no chunks: the single vector");
        assertNull(plain.plan().chunkTextFields());
    }

    @Test
    void withoutFieldTheProcessorsFieldsAreUsedAsBefore() throws Exception {
        indices(withBody("docs", null, null));
        Result r = run(processor(), search("{\"query_text\": \"python\"}", "docs"));
        MultiMatchQueryBuilder bm25 = assertInstanceOf(MultiMatchQueryBuilder.class, r.request().source().query());
        assertEquals(Map.of("title", 1.0f, "text", 1.0f), bm25.fields());
        assertEquals("sesa", r.plan().names().prefix());
        assertNull(r.plan().textFields());
        assertEquals("", service.encoding.requests.get(0).getOptions().getConceptSpace());
    }

    @Test
    void theModelCheckUsesTheFieldsRecord() throws Exception {
        indices(withBody("docs", null, "{\"dense\": \"fake-dense@0\"}"));
        Exception e = failure(processor(), search("{\"query_text\": \"python\", \"field\": \"body\", \"mode\": \"dense\"}", "docs"));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(e));
        assertTrue(e.getMessage().contains("target [body_sesa]") && e.getMessage().contains("_meta.sesa.models.body_sesa"), e.getMessage());
    }

    @Test
    void aFieldThatIsNotSesaTextInEveryTargetIndexIsA400NamingIt() throws Exception {
        indices(withBody("docs", null, null), MappingFixtures.index("plain", MappingFixtures.mapping(Map.of("body", Map.of("type", "text")))));
        SesaQueryProcessor p = processor();

        Exception text = failure(p, search("{\"query_text\": \"q\", \"field\": \"title\"}", "docs"));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(text));
        assertTrue(text.getMessage().contains("[ext.sesa.field] [title] is not a sesa_text field of index [docs] (it is mapped as [text] there"), text.getMessage());
        assertTrue(text.getMessage().contains("its sesa_text fields are [body]"), text.getMessage());

        Exception unmapped = failure(p, search("{\"query_text\": \"q\", \"field\": \"nope\", \"mode\": \"bm25\"}", "docs"));
        assertTrue(unmapped.getMessage().contains("[ext.sesa.field] [nope] is not a sesa_text field of index [docs] (it is not mapped there"), unmapped.getMessage());

        Exception mixed = failure(p, search("{\"query_text\": \"q\", \"field\": \"body\"}", "docs", "plain"));
        assertTrue(mixed.getMessage().contains("index [plain]") && mixed.getMessage().contains("it has no sesa_text field"), mixed.getMessage());

        Exception none = failure(p, search("{\"query_text\": \"q\", \"field\": \"body\"}", "missing-index"));
        assertTrue(none.getMessage().contains("targets no local index"), none.getMessage());
        assertEquals(0, service.encoding.calls.get(), "refused before any Encode call");
    }

    @Test
    void targetIndicesMustAgreeOnTheConceptSpace() throws Exception {
        indices(withBody("a", "esco", null), withBody("b", "onet", null), withBody("c", "esco", null));
        SesaQueryProcessor p = processor();
        Exception e = failure(p, search("{\"query_text\": \"q\", \"field\": \"body\"}", "a", "b"));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(e));
        assertTrue(e.getMessage().contains("different concept spaces") && e.getMessage().contains("[esco] in [a]") && e.getMessage().contains("[onet] in [b]"), e.getMessage());
        assertNotNull(run(p, search("{\"query_text\": \"q\", \"field\": \"body\"}", "a", "c")).plan());
    }

    @Test
    void theCacheKeepsConceptSpacesApart() throws Exception {
        indices(withBody("a", "esco", null), withBody("b", "onet", null));
        SesaQueryProcessor p = processor();
        run(p, search("{\"query_text\": \"q\", \"field\": \"body\", \"mode\": \"dense\"}", "a"));
        run(p, search("{\"query_text\": \"q\", \"field\": \"body\", \"mode\": \"dense\"}", "b"));
        assertEquals(2, service.encoding.calls.get(), "one encoding per concept space, never shared");
        assertTrue(run(p, search("{\"query_text\": \"q\", \"field\": \"body\", \"mode\": \"dense\"}", "a")).plan().encodingCached());
    }
}
