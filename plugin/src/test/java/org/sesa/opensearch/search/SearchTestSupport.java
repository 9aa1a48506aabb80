package org.sesa.opensearch.search;

import org.apache.lucene.search.TotalHits;
import org.opensearch.action.OriginalIndices;
import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.action.search.SearchResponseSections;
import org.opensearch.action.search.ShardSearchFailure;
import org.opensearch.common.document.DocumentField;
import org.opensearch.common.settings.Settings;
import org.opensearch.core.ParseField;
import org.opensearch.core.common.bytes.BytesArray;
import org.opensearch.core.index.shard.ShardId;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.core.xcontent.XContentParser;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.index.query.WrapperQueryBuilder;
import org.opensearch.search.SearchHit;
import org.opensearch.search.SearchHits;
import org.opensearch.search.SearchModule;
import org.opensearch.search.SearchShardTarget;
import org.sesa.opensearch.search.query.BranchQueries;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Shared helpers for the search pipeline tests: a query registry, hits and responses. */
public final class SearchTestSupport {

    private SearchTestSupport() {}

    private static NamedXContentRegistry registry;

    /**
     * The core queries, plus stand-ins for {@code knn} (k-NN plugin) and {@code rank_feature} (mapper-extras), which
     * parse into a {@link WrapperQueryBuilder} holding their JSON.
     */
    public static synchronized NamedXContentRegistry registry() {
        if (registry == null) {
            List<NamedXContentRegistry.Entry> entries = new ArrayList<>(new SearchModule(Settings.EMPTY, List.of()).getNamedXContents());
            entries.add(new NamedXContentRegistry.Entry(QueryBuilder.class, new ParseField("knn"), p -> stub("knn", p)));
            entries.add(new NamedXContentRegistry.Entry(QueryBuilder.class, new ParseField("rank_feature"), p -> stub("rank_feature", p)));
            registry = new NamedXContentRegistry(entries);
        }
        return registry;
    }

    private static QueryBuilder stub(String name, XContentParser p) throws IOException {
        return new WrapperQueryBuilder(BranchQueries.toJson(Map.of(name, p.map())));
    }

    /** The {@code _seq_no} that {@link #hit} gives the document {@code id} (stable, distinct for short ids). */
    public static long seqNo(String id) {
        return Math.floorMod(id.hashCode(), 1_000_000);
    }

    /** A hit of index {@code index} (shard 0) with a JSON source, {@code _seq_no} {@link #seqNo} and primary term 1. */
    public static SearchHit hit(String index, String id, float score, String source) {
        SearchHit h = new SearchHit(0, id, new HashMap<>(), new HashMap<>());
        h.score(score);
        h.setSeqNo(seqNo(id));
        h.setPrimaryTerm(1);
        if (source != null) {
            h.sourceRef(new BytesArray(source));
        }
        h.shard(new SearchShardTarget("node-1", new ShardId(index, index + "-uuid", 0), null, OriginalIndices.NONE));
        return h;
    }

    public static SearchHit hit(String id, float score, String source) {
        return hit("idx", id, score, source);
    }

    public static SearchResponse response(SearchHit... hits) {
        float max = Float.NaN;
        for (SearchHit h : hits) {
            max = Float.isNaN(max) ? h.getScore() : Math.max(max, h.getScore());
        }
        SearchHits sh = new SearchHits(hits, new TotalHits(hits.length, TotalHits.Relation.EQUAL_TO), max);
        return new SearchResponse(
            new SearchResponseSections(sh, null, null, false, null, null, 1),
            null,
            1,
            1,
            0,
            3,
            ShardSearchFailure.EMPTY_ARRAY,
            SearchResponse.Clusters.EMPTY
        );
    }

    public static MultiSearchResponse msearch(Object... responsesOrFailures) {
        MultiSearchResponse.Item[] items = new MultiSearchResponse.Item[responsesOrFailures.length];
        for (int i = 0; i < items.length; i++) {
            Object o = responsesOrFailures[i];
            items[i] = o instanceof SearchResponse r ? new MultiSearchResponse.Item(r, null) : new MultiSearchResponse.Item(null, (Exception) o);
        }
        return new MultiSearchResponse(items, 5);
    }

    /** A BranchSearcher that records requests and answers with a scripted function. */
    public static final class RecordingSearcher implements org.sesa.opensearch.search.executors.BranchSearcher {
        public final List<MultiSearchRequest> requests = new ArrayList<>();
        public java.util.function.Function<MultiSearchRequest, MultiSearchResponse> answer = r -> {
            Object[] empty = new Object[r.requests().size()];
            for (int i = 0; i < empty.length; i++) {
                empty[i] = response();
            }
            return msearch(empty);
        };
        public Exception failure;

        @Override
        public synchronized void multiSearch(MultiSearchRequest request, org.opensearch.core.action.ActionListener<MultiSearchResponse> listener) {
            requests.add(request);
            if (failure != null) {
                listener.onFailure(failure);
            } else {
                listener.onResponse(answer.apply(request));
            }
        }

        public SearchRequest only(int i) {
            return requests.get(0).requests().get(i);
        }
    }

    /**
     * {@code hit} carrying the best window as a passage lookup ({@link Passages#lookup}) names it: inner hits
     * {@link Passages#INNER_HITS}, start/end as fields; no window (the document has no chunks) when {@code start} is null.
     */
    public static SearchHit withLookup(SearchHit hit, Integer start, Integer end, float score) {
        Map<String, SearchHits> inner = new HashMap<>();
        if (start == null) {
            inner.put(Passages.INNER_HITS, new SearchHits(new SearchHit[0], new TotalHits(0, TotalHits.Relation.EQUAL_TO), Float.NaN));
        } else {
            Map<String, DocumentField> fields = new HashMap<>();
            fields.put("sesa_chunks.start", new DocumentField("sesa_chunks.start", List.of(start)));
            fields.put("sesa_chunks.end", new DocumentField("sesa_chunks.end", List.of(end)));
            SearchHit w = new SearchHit(0, hit.getId(), new SearchHit.NestedIdentity("sesa_chunks", 1, null), fields, Map.of());
            w.score(score);
            inner.put(Passages.INNER_HITS, new SearchHits(new SearchHit[] { w }, new TotalHits(3, TotalHits.Relation.EQUAL_TO), score));
        }
        hit.setInnerHits(inner);
        return hit;
    }
}
