package org.sesa.opensearch.search.executors;

import org.opensearch.action.IndicesRequest;
import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.common.cache.Cache;
import org.opensearch.common.cache.CacheBuilder;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.index.query.MatchAllQueryBuilder;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.search.aggregations.bucket.filter.Filters;
import org.opensearch.search.aggregations.bucket.filter.FiltersAggregationBuilder;
import org.opensearch.search.aggregations.bucket.filter.FiltersAggregator.KeyedFilter;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.sesa.opensearch.search.query.BranchQueries;
import org.sesa.opensearch.search.query.ConceptIdf;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * The concept statistics of a search's targets, kept for {@link #TTL} per target indices (by UUID, so an index made
 * again under its name starts afresh), routing, field and concept: an index that grows gets its new statistics
 * within that time, and a search whose concepts were all seen recently reads none. What is missing is read with
 * two size-0 searches sent together (answered from OpenSearch's shard request cache until the next refresh):
 * <ol>
 *   <li>the number of documents: a {@code match_all} count (top-level documents only, as every search counts them,
 *       so the windows of chunked documents do not count);</li>
 *   <li>each concept's document frequency: a {@code filters} aggregation with one {@code rank_feature} filter per
 *       concept, over the documents that carry at least one of them (the same match set as the concept branch, so
 *       the cost grows with the branch's own, not with the index).</li>
 * </ol>
 * The user's query and filters are left out: idf describes the collection, as BM25's does.
 */
public final class SearchConceptStats implements ConceptStatsLookup {

    static final String AGG = "sesa_concept_df";
    /** How long statistics are kept: the most an idf can lag behind the documents indexed since. */
    public static final TimeValue TTL = TimeValue.timeValueSeconds(30);
    static final long MAX_ENTRIES = 200_000;
    /** The cache key part of a target's document count (concept keys are never empty). */
    private static final String DOCS = "";

    private final BranchSearcher searcher;
    private final NamedXContentRegistry registry;
    private final Function<IndicesRequest, String> targetIds;
    private final Cache<String, Long> cache = CacheBuilder.<String, Long>builder()
        .setMaximumWeight(MAX_ENTRIES)
        .setExpireAfterWrite(TTL)
        .build();

    /**
     * @param searcher  runs the statistics searches
     * @param registry  parses the rank_feature filters
     * @param targetIds the UUIDs of a search's target indices ({@code TargetIndexIds} on a node); it answers null where
     *                  they cannot be keyed, and those statistics are not kept
     */
    public SearchConceptStats(BranchSearcher searcher, NamedXContentRegistry registry, Function<IndicesRequest, String> targetIds) {
        this.searcher = Objects.requireNonNull(searcher);
        this.registry = Objects.requireNonNull(registry);
        this.targetIds = Objects.requireNonNull(targetIds);
    }

    @Override
    public void lookup(SearchRequest template, String field, List<String> keys, ActionListener<ConceptIdf> listener) {
        String ids = targetIds.apply(template);
        String scope = ids == null ? null : ids + "\u0000" + template.routing() + "\u0000" + field + "\u0000";
        Map<String, Long> df = new HashMap<>();
        List<String> missing = new ArrayList<>();
        Long docs = scope == null ? null : cache.get(scope + DOCS);
        for (String k : keys) {
            Long v = scope == null ? null : cache.get(scope + k);
            if (v == null) {
                missing.add(k);
            } else {
                df.put(k, v);
            }
        }
        if (docs != null && missing.isEmpty()) {
            listener.onResponse(new ConceptIdf(docs, df));
            return;
        }
        MultiSearchRequest msearch;
        try {
            msearch = request(template, field, missing, docs == null, registry);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        Long knownDocs = docs;
        searcher.multiSearch(msearch, ActionListener.wrap(r -> {
            ConceptIdf read = parse(r, missing, knownDocs);
            if (scope != null) {
                cache.put(scope + DOCS, read.docs());
                read.docFreq().forEach((k, v) -> cache.put(scope + k, v));
            }
            df.putAll(read.docFreq());
            listener.onResponse(new ConceptIdf(read.docs(), df));
        }, listener::onFailure));
    }

    /**
     * The count search (when {@code count}) and the document-frequency search (when there are {@code keys}), in that
     * order; bucket {@code c<i>} counts {@code keys[i]}.
     */
    static MultiSearchRequest request(SearchRequest template, String field, List<String> keys, boolean count, NamedXContentRegistry registry) {
        List<KeyedFilter> filters = new ArrayList<>(keys.size());
        List<Object> should = new ArrayList<>(keys.size());
        for (int i = 0; i < keys.size(); i++) {
            Map<String, Object> rf = Map.of("rank_feature", Map.of("field", field + "." + keys.get(i)));
            filters.add(new KeyedFilter("c" + i, BranchQueries.parse(rf, registry)));
            should.add(rf);
        }
        Map<String, Object> bool = new LinkedHashMap<>();
        bool.put("should", should);
        bool.put("minimum_should_match", 1);
        MultiSearchRequest msearch = new MultiSearchRequest();
        if (count) {
            msearch.add(BranchRequests.withSource(template, new SearchSourceBuilder().query(new MatchAllQueryBuilder()).size(0).trackTotalHits(true)));
        }
        if (keys.isEmpty()) {
            return msearch;
        }
        QueryBuilder carriers = BranchQueries.parse(Map.of("bool", bool), registry);
        SearchSourceBuilder df = new SearchSourceBuilder().query(carriers)
            .size(0)
            .trackTotalHits(false)
            .aggregation(new FiltersAggregationBuilder(AGG, filters.toArray(new KeyedFilter[0])).otherBucket(false));
        msearch.add(BranchRequests.withSource(template, df));
        return msearch;
    }

    /**
     * The statistics in the answers of {@link #request}: the count is read from the first answer unless
     * {@code knownDocs} is given (then it was not asked for).
     *
     * @throws IllegalStateException when a search failed or an answer lacks its count or aggregation
     */
    static ConceptIdf parse(MultiSearchResponse response, List<String> keys, Long knownDocs) {
        MultiSearchResponse.Item[] items = response.getResponses();
        int expected = (knownDocs == null ? 1 : 0) + (keys.isEmpty() ? 0 : 1);
        if (items.length != expected) {
            throw new IllegalStateException("concept statistics: expected " + expected + " answers, got " + items.length);
        }
        for (MultiSearchResponse.Item item : items) {
            if (item.isFailure()) {
                throw new IllegalStateException("concept statistics: " + item.getFailureMessage(), item.getFailure());
            }
        }
        long docs;
        if (knownDocs == null) {
            SearchResponse count = items[0].getResponse();
            if (count.getHits().getTotalHits() == null) {
                throw new IllegalStateException("concept statistics: the count search returned no total");
            }
            docs = count.getHits().getTotalHits().value();
        } else {
            docs = knownDocs;
        }
        if (keys.isEmpty()) {
            return new ConceptIdf(docs, Map.of());
        }
        SearchResponse dfAnswer = items[items.length - 1].getResponse();
        Filters agg = dfAnswer.getAggregations() == null ? null : dfAnswer.getAggregations().get(AGG);
        if (agg == null) {
            throw new IllegalStateException("concept statistics: the document-frequency search returned no [" + AGG + "] aggregation");
        }
        Map<String, Long> df = new HashMap<>();
        for (int i = 0; i < keys.size(); i++) {
            Filters.Bucket b = agg.getBucketByKey("c" + i);
            df.put(keys.get(i), b == null ? 0L : b.getDocCount());
        }
        return new ConceptIdf(docs, df);
    }
}
