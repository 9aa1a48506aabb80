package org.sesa.opensearch.search.executors;

import org.junit.jupiter.api.Test;
import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.core.action.ActionListener;
import org.opensearch.index.query.BoolQueryBuilder;
import org.opensearch.index.query.MatchAllQueryBuilder;
import org.opensearch.search.aggregations.bucket.filter.FiltersAggregationBuilder;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.sesa.opensearch.index.ChunkFieldLookup;
import org.sesa.opensearch.index.SesaTextFieldLookup;
import org.sesa.opensearch.index.TargetModelsLookup;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.SearchTestSupport;
import org.sesa.opensearch.search.SesaQueryTestCase;
import org.sesa.opensearch.search.processor.SesaQueryProcessor;
import org.sesa.opensearch.search.processor.SesaQueryProcessorFactory;
import org.sesa.opensearch.search.query.ConceptIdf;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code concept_idf}: the concept branch weighs each query concept by its idf in the target indices, read before the
 * branch is searched; the explanation gets the same idf; no statistics, no idf, and the search goes on.
 */
class ConceptIdfSearchTests extends SesaQueryTestCase {

    /** Records each lookup and answers with {@link #answer} (or fails with {@link #failure}). */
    static final class StubStats implements ConceptStatsLookup {
        final List<String> fields = new ArrayList<>();
        final List<List<String>> keys = new ArrayList<>();
        final List<SearchRequest> templates = new ArrayList<>();
        ConceptIdf answer;
        Exception failure;

        @Override
        public synchronized void lookup(SearchRequest template, String field, List<String> k, ActionListener<ConceptIdf> listener) {
            templates.add(template);
            fields.add(field);
            keys.add(k);
            if (failure != null) {
                listener.onFailure(failure);
            } else {
                listener.onResponse(answer);
            }
        }
    }

    private final StubStats stats = new StubStats();

    private SesaQueryProcessor withStats(Object... kv) {
        Map<String, Object> cfg = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            cfg.put((String) kv[i], kv[i + 1]);
        }
        return new SesaQueryProcessorFactory(
            fake::client,
            searcher,
            SearchTestSupport.registry(),
            TargetModelsLookup.NONE,
            SesaTextFieldLookup.NONE,
            ChunkFieldLookup.NONE,
            stats
        ).create(Map.of(), "t", null, false, cfg, null);
    }

    /** The first clause of the concept branch: the only search of the msearch sent after the statistics. */
    private String conceptClause() {
        SearchRequest last = searcher.requests.get(searcher.requests.size() - 1).requests().get(0);
        BoolQueryBuilder concepts = assertInstanceOf(BoolQueryBuilder.class, last.source().query());
        return wrapped(concepts.should().get(0));
    }

    @Test
    void hybridConceptBranchScoresWeightTimesIdf() throws Exception {
        stats.answer = new ConceptIdf(1000, Map.of("k_python_dev", 9L));
        Result r = run(withStats(), request(source(ext("{\"query_text\": \"python dev\"}"))));

        assertEquals(List.of("sesa_concepts"), stats.fields);
        assertEquals(List.of(List.of("k_python_dev")), stats.keys);
        assertArrayEquals(new String[] { "sesa-test" }, stats.templates.get(0).indices());
        float boost = 0.5f * (float) ConceptIdf.idf(1000, 9);
        assertEquals(
            map("{\"rank_feature\":{\"field\":\"sesa_concepts.k_python_dev\",\"linear\":{},\"boost\":" + boost + "}}"),
            map(conceptClause())
        );
        // the explanation reads the same idf from the plan's encoding
        assertEquals(stats.answer, r.plan().encoding().idf());
        // the dense branch did not wait for the statistics: its own msearch, sent first; one answer per branch
        assertEquals(2, searcher.requests.size());
        assertEquals(1, searcher.requests.get(0).requests().size());
        assertTrue(wrapped(searcher.requests.get(0).requests().get(0).source().query()).contains("knn"));
        assertEquals(List.of(Branch.DENSE, Branch.CONCEPTS), r.plan().otherBranches());
        assertEquals(2, sides(r).get().getResponses().length);
    }

    @Test
    void hybridWithACachedEncodingWeighsItAgain() throws Exception {
        stats.answer = new ConceptIdf(1000, Map.of("k_python_dev", 999L));
        SesaQueryProcessor p = withStats();
        run(p, request(source(ext("{\"query_text\": \"python dev\"}"))));
        Result again = run(p, request(source(ext("{\"query_text\": \"python dev\"}"))));
        assertEquals(1, service.encoding.calls.get(), "the second search took the cached encoding");
        assertEquals(2, stats.keys.size());
        assertTrue(again.plan().encodingCached());
        assertEquals(stats.answer, again.plan().encoding().idf());
        float boost = 0.5f * (float) ConceptIdf.idf(1000, 999);
        assertEquals(map("{\"rank_feature\":{\"field\":\"sesa_concepts.k_python_dev\",\"linear\":{},\"boost\":" + boost + "}}"), map(conceptClause()));
        assertEquals(List.of(Branch.DENSE, Branch.CONCEPTS), again.plan().otherBranches());
    }

    @Test
    void conceptsModeLooksUpBeforeTheMainSearchAndAgainForACachedEncoding() throws Exception {
        stats.answer = new ConceptIdf(10, Map.of("k_rust", 10L));
        SesaQueryProcessor p = withStats();
        float boost = 0.5f * (float) ConceptIdf.idf(10, 10);
        for (int i = 1; i <= 2; i++) {
            Result r = run(p, request(source(ext("{\"query_text\": \"rust\", \"mode\": \"concepts\"}"))));
            BoolQueryBuilder main = assertInstanceOf(BoolQueryBuilder.class, r.request().source().query());
            assertEquals(
                map("{\"rank_feature\":{\"field\":\"sesa_concepts.k_rust\",\"linear\":{},\"boost\":" + boost + "}}"),
                map(wrapped(main.should().get(0)))
            );
            assertEquals(i, stats.keys.size(), "statistics are read for every search: they change as the index does");
        }
        assertEquals(1, service.encoding.calls.get(), "the second search took the cached encoding");
    }

    @Test
    void noLookupWhenOffOrNoConceptBranch() throws Exception {
        stats.answer = new ConceptIdf(1000, Map.of());
        Result off = run(withStats(SesaQueryProcessorFactory.CONCEPT_IDF, false), request(source(ext("{\"query_text\": \"python dev\"}"))));
        Result dense = run(withStats(), request(source(ext("{\"query_text\": \"python dev\", \"mode\": \"dense\"}"))));
        Result bm25 = run(withStats(), request(source(ext("{\"query_text\": \"python dev\", \"mode\": \"bm25\"}"))));
        assertTrue(stats.keys.isEmpty(), "looked up: " + stats.keys);
        assertNull(off.plan().encoding().idf());
        assertNull(dense.plan().encoding().idf());
        assertNull(bm25.plan().encoding());
        assertEquals(map("{\"rank_feature\":{\"field\":\"sesa_concepts.k_python_dev\",\"linear\":{},\"boost\":0.5}}"), map(wrapped(assertInstanceOf(BoolQueryBuilder.class, searcher.requests.get(0).requests().get(1).source().query()).should().get(0))));
    }

    @Test
    void onlyConceptsTheBranchCanSearchAreLookedUp() throws Exception {
        stats.answer = new ConceptIdf(10, Map.of());
        // the fake server's one concept is k_<text>: a dot in the text makes a key no rank_features field can hold
        Result r = run(withStats(), request(source(ext("{\"query_text\": \"v1.2 notes\"}"))));
        assertTrue(stats.keys.isEmpty(), "looked up: " + stats.keys);
        assertNull(r.plan().encoding().idf());
    }

    @Test
    void unreadableStatisticsLeaveTheWeightsAsTheyAre() throws Exception {
        stats.failure = new IllegalStateException("no shard answered");
        Result r = run(withStats(), request(source(ext("{\"query_text\": \"python dev\"}"))));
        assertEquals(1, stats.keys.size());
        assertNull(r.plan().encoding().idf());
        assertEquals(map("{\"rank_feature\":{\"field\":\"sesa_concepts.k_python_dev\",\"linear\":{},\"boost\":0.5}}"), map(conceptClause()));
        assertTrue(sides(r).get().getResponses().length > 0, "the side branches still ran");
    }

    @Test
    void statisticsRequestCountsDocumentsAndConceptCarriers() {
        SearchRequest template = new SearchRequest(new String[] { "a", "b" }, new SearchSourceBuilder().query(new MatchAllQueryBuilder()));
        template.routing("r1");
        MultiSearchRequest m = SearchConceptStats.request(template, "p_concepts", List.of("esco-1", "esco-2"), true, SearchTestSupport.registry());
        assertEquals(2, m.requests().size());
        SearchRequest count = m.requests().get(0);
        SearchRequest df = m.requests().get(1);
        for (SearchRequest s : List.of(count, df)) {
            assertArrayEquals(new String[] { "a", "b" }, s.indices());
            assertEquals("r1", s.routing());
            assertEquals("_none", s.pipeline());
            assertEquals(0, s.source().size());
        }
        assertInstanceOf(MatchAllQueryBuilder.class, count.source().query());
        assertTrue(count.source().trackTotalHitsUpTo() != null && count.source().trackTotalHitsUpTo() > 1_000_000, "counts every document");
        BoolQueryBuilder carriers = assertInstanceOf(BoolQueryBuilder.class, df.source().query());
        assertEquals(2, carriers.should().size());
        FiltersAggregationBuilder agg = assertInstanceOf(FiltersAggregationBuilder.class, df.source().aggregations().getAggregatorFactories().iterator().next());
        assertEquals(SearchConceptStats.AGG, agg.getName());
        assertEquals(List.of("c0", "c1"), agg.filters().stream().map(f -> f.key()).toList());
        assertTrue(wrapped(agg.filters().get(1).filter()).contains("p_concepts.esco-2"));
    }

    @Test
    void failedStatisticsSearchIsAFailureNotAGuess() {
        Exception e = org.junit.jupiter.api.Assertions.assertThrows(
            IllegalStateException.class,
            () -> SearchConceptStats.parse(SearchTestSupport.msearch(SearchTestSupport.response(), new RuntimeException("shard down")), List.of("x"), null)
        );
        assertTrue(e.getMessage().contains("shard down"), e.getMessage());
        Exception noAgg = org.junit.jupiter.api.Assertions.assertThrows(
            IllegalStateException.class,
            () -> SearchConceptStats.parse(SearchTestSupport.msearch(SearchTestSupport.response(), SearchTestSupport.response()), List.of("x"), null)
        );
        assertTrue(noAgg.getMessage().contains(SearchConceptStats.AGG), noAgg.getMessage());
    }
}
