package org.sesa.opensearch.search.executors;

import org.apache.lucene.search.TotalHits;
import org.junit.jupiter.api.Test;
import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.action.search.SearchResponseSections;
import org.opensearch.action.search.ShardSearchFailure;
import org.opensearch.core.action.ActionListener;
import org.opensearch.search.SearchHit;
import org.opensearch.search.SearchHits;
import org.opensearch.search.aggregations.InternalAggregations;
import org.opensearch.search.aggregations.bucket.filter.InternalFilters;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.sesa.opensearch.search.SearchTestSupport;
import org.sesa.opensearch.search.query.ConceptIdf;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link SearchConceptStats}: what it reads from the two statistics searches, and what it keeps, per target indices
 * (by UUID), so a search whose concepts were seen recently reads nothing.
 */
class SearchConceptStatsTests {

    /** Answers every statistics msearch from a fixed index: {@code docs} documents, {@code df} per concept. */
    static final class FakeIndex implements BranchSearcher {
        final List<MultiSearchRequest> requests = new ArrayList<>();
        long docs = 100;
        Map<String, Long> df = Map.of("a", 5L, "b", 0L, "c", 40L);

        @Override
        public synchronized void multiSearch(MultiSearchRequest request, ActionListener<MultiSearchResponse> listener) {
            requests.add(request);
            List<Object> answers = new ArrayList<>();
            for (SearchRequest r : request.requests()) {
                if (r.source().aggregations() == null) {
                    answers.add(answer(docs, null));
                    continue;
                }
                List<InternalFilters.InternalBucket> buckets = new ArrayList<>();
                var filters = ((org.opensearch.search.aggregations.bucket.filter.FiltersAggregationBuilder) r.source()
                    .aggregations()
                    .getAggregatorFactories()
                    .iterator()
                    .next()).filters();
                for (var f : filters) {
                    String query = SesaQueryTestCaseAccess.wrapped(f.filter());
                    String key = query.substring(query.indexOf("p_concepts.") + "p_concepts.".length(), query.indexOf('"', query.indexOf("p_concepts.")));
                    buckets.add(new InternalFilters.InternalBucket(f.key(), df.getOrDefault(key, 0L), InternalAggregations.EMPTY, true));
                }
                answers.add(answer(0, new InternalFilters(SearchConceptStats.AGG, buckets, true, Map.of())));
            }
            listener.onResponse(SearchTestSupport.msearch(answers.toArray()));
        }

        private static SearchResponse answer(long total, InternalFilters agg) {
            SearchHits hits = new SearchHits(new SearchHit[0], new TotalHits(total, TotalHits.Relation.EQUAL_TO), Float.NaN);
            InternalAggregations aggs = agg == null ? null : InternalAggregations.from(List.of(agg));
            return new SearchResponse(
                new SearchResponseSections(hits, aggs, null, false, null, null, 1),
                null, 1, 1, 0, 1, ShardSearchFailure.EMPTY_ARRAY, SearchResponse.Clusters.EMPTY
            );
        }
    }

    /** The test support's reading of a parsed query (a wrapper query in tests: the registry does not know rank_feature). */
    static final class SesaQueryTestCaseAccess {
        static String wrapped(org.opensearch.index.query.QueryBuilder q) {
            return new String(((org.opensearch.index.query.WrapperQueryBuilder) q).source(), java.nio.charset.StandardCharsets.UTF_8);
        }
    }

    private static ConceptIdf lookup(SearchConceptStats stats, List<String> keys) throws Exception {
        CompletableFuture<ConceptIdf> f = new CompletableFuture<>();
        SearchRequest template = new SearchRequest(new String[] { "idx" }, new SearchSourceBuilder());
        stats.lookup(template, "p_concepts", keys, ActionListener.wrap(f::complete, f::completeExceptionally));
        return f.get(5, TimeUnit.SECONDS);
    }

    @Test
    void readsCountAndFrequenciesThenKeepsThem() throws Exception {
        FakeIndex index = new FakeIndex();
        AtomicReference<String> uuid = new AtomicReference<>("uuid-1");
        SearchConceptStats stats = new SearchConceptStats(index, SearchTestSupport.registry(), r -> uuid.get());

        assertEquals(new ConceptIdf(100, Map.of("a", 5L, "b", 0L)), lookup(stats, List.of("a", "b")));
        assertEquals(1, index.requests.size());
        assertEquals(2, index.requests.get(0).requests().size(), "count and frequencies");

        // a and the count are kept: only c is read
        assertEquals(new ConceptIdf(100, Map.of("a", 5L, "c", 40L)), lookup(stats, List.of("a", "c")));
        assertEquals(2, index.requests.size());
        assertEquals(1, index.requests.get(1).requests().size(), "frequencies only");

        // everything kept: no search at all
        index.docs = 1000; // (the fake index grew; within the TTL the kept statistics answer)
        assertEquals(new ConceptIdf(100, Map.of("b", 0L, "c", 40L)), lookup(stats, List.of("b", "c")));
        assertEquals(2, index.requests.size());

        // the index made again under its name (new UUID): read afresh
        uuid.set("uuid-2");
        assertEquals(new ConceptIdf(1000, Map.of("b", 0L, "c", 40L)), lookup(stats, List.of("b", "c")));
        assertEquals(3, index.requests.size());
    }

    @Test
    void unresolvableTargetsAreNeverKept() throws Exception {
        FakeIndex index = new FakeIndex();
        SearchConceptStats stats = new SearchConceptStats(index, SearchTestSupport.registry(), r -> null);
        lookup(stats, List.of("a"));
        lookup(stats, List.of("a"));
        assertEquals(2, index.requests.size());
        assertEquals(2, index.requests.get(1).requests().size());
    }
}
