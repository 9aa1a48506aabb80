package org.sesa.opensearch.search.executors;

import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.core.action.ActionListener;
import org.opensearch.index.query.BoolQueryBuilder;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.index.query.QueryBuilders;
import org.opensearch.search.SearchExtBuilder;
import org.opensearch.search.SearchHit;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.fetch.subphase.FetchSourceContext;
import org.opensearch.search.fetch.subphase.FieldAndFormat;
import org.sesa.opensearch.search.DocKey;
import org.sesa.opensearch.search.HitBackfill;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The {@link HitBackfill} of one search: fetches lean hits the way the main branch fetches its own. Per shard of an
 * index, one search (all of them as one msearch through the {@link BranchSearcher}) for the sequence numbers on that
 * shard, with the user's source and fields settings. Its own class because it outlives the request rewrite:
 * {@code sesa_fuse} and {@code sesa_rerank} call it from the plan once they know which hits the page needs.
 */
final class ShardHitBackfill implements HitBackfill {

    private final BranchSearcher searcher;
    private final SearchRequest template;
    private final SearchSourceBuilder userSource;
    private final FetchSourceContext fetch;
    private final List<SearchExtBuilder> exts;
    private final Supplier<QueryBuilder> passageLookup;

    /**
     * @param template   the user's request before the rewrite (indices, routing, preference)
     * @param userSource its source (stored, docvalue and fetch fields, highlighter, timeout, version)
     * @param fetch      the {@code _source} to fetch (the user's, widened, see {@link SourceWidening})
     * @param exts       the request's search extensions other than {@code ext.sesa}
     * @param passageLookup null, or, when the search names best windows, asked at each fetch for the clause
     *                      ({@link org.sesa.opensearch.search.Passages#lookup}, null while the query has no vector) that
     *                      each fetch adds as a {@code should} (it filters nothing) to get every fetched hit's best
     *                      window as inner hits
     */
    ShardHitBackfill(
        BranchSearcher searcher,
        SearchRequest template,
        SearchSourceBuilder userSource,
        FetchSourceContext fetch,
        List<SearchExtBuilder> exts,
        Supplier<QueryBuilder> passageLookup
    ) {
        this.passageLookup = passageLookup;
        this.searcher = searcher;
        this.template = template;
        this.userSource = userSource;
        this.fetch = fetch;
        this.exts = exts;
    }

    @Override
    public void fetch(List<DocKey> keys, ActionListener<Map<DocKey, SearchHit>> listener) {
        fetch(keys, List.of(), listener);
    }

    @Override
    public boolean looksUpPassages() {
        return passageLookup != null;
    }

    @Override
    public void fetch(List<DocKey> keys, List<DocKey> passagesOnly, ActionListener<Map<DocKey, SearchHit>> listener) {
        QueryBuilder extra = passageLookup == null ? null : passageLookup.get();
        // one search per shard and kind: the full hits like the user's search, the passage lookups lean
        Map<ShardRef, List<DocKey>> byShard = new LinkedHashMap<>();
        for (DocKey k : keys) {
            byShard.computeIfAbsent(new ShardRef(k.index(), k.shard(), false), x -> new ArrayList<>()).add(k);
        }
        if (extra != null) {
            for (DocKey k : passagesOnly) {
                byShard.computeIfAbsent(new ShardRef(k.index(), k.shard(), true), x -> new ArrayList<>()).add(k);
            }
        }
        if (byShard.isEmpty()) {
            listener.onResponse(Map.of());
            return;
        }
        List<ShardRef> shards = new ArrayList<>(byShard.keySet());
        MultiSearchRequest msearch = new MultiSearchRequest();
        for (ShardRef shard : shards) {
            List<DocKey> wanted = byShard.get(shard);
            List<Long> seqNos = wanted.stream().map(DocKey::seqNo).toList();
            BoolQueryBuilder q = QueryBuilders.boolQuery().filter(QueryBuilders.termsQuery("_seq_no", seqNos));
            if (extra != null) {
                q.should(extra); // next to a filter, a should clause is optional: it scores, it does not filter
            }
            // one shard: each sequence number names at most one live document there; an unknown shard may
            // hold a document with the same number on each shard of the index
            int size = shard.shard() >= 0 ? wanted.size() : wanted.size() * 32;
            SearchSourceBuilder s = shard.passagesOnly()
                ? BranchRequests.lean(new SearchSourceBuilder().query(q).from(0).size(size).trackTotalHits(false)).ext(exts)
                : fetchSourceLikeTheUser(userSource, q, size, fetch, exts);
            SearchRequest r = BranchRequests.withSource(template, s);
            r.indices(shard.index());
            if (shard.shard() >= 0) {
                String user = template.preference();
                boolean keep = user != null && user.isEmpty() == false && user.startsWith("_shards:") == false;
                r.preference("_shards:" + shard.shard() + (keep ? "|" + user : ""));
            }
            msearch.add(r);
        }
        searcher.multiSearch(msearch, ActionListener.wrap(r -> {
            Map<DocKey, SearchHit> found = new HashMap<>();
            Set<DocKey> ambiguous = new HashSet<>();
            for (int i = 0; i < shards.size(); i++) {
                MultiSearchResponse.Item item = r.getResponses()[i];
                if (item.isFailure()) {
                    listener.onFailure(item.getFailure());
                    return;
                }
                ShardRef shard = shards.get(i);
                Set<DocKey> wanted = new HashSet<>(byShard.get(shard));
                for (SearchHit h : item.getResponse().getHits().getHits()) {
                    DocKey k = new DocKey(shard.index(), shard.shard(), h.getSeqNo(), h.getPrimaryTerm());
                    if (wanted.contains(k) && found.put(k, h) != null) {
                        ambiguous.add(k);
                    }
                }
            }
            ambiguous.forEach(found::remove);
            listener.onResponse(found);
        }, listener::onFailure));
    }

    /**
     * A shard of an index (shard -1: unknown), the unit the page fetch searches, and whether the search there only looks
     * up best windows (lean hits).
     */
    private record ShardRef(String index, int shard, boolean passagesOnly) {}

    /**
     * The page fetch's source: the user's {@code _source} (widened), stored, docvalue and fetch fields, highlighter,
     * timeout and version, for {@code size} hits of {@code query}. No post filter or explain: the candidates
     * already passed the one, and the other belongs to the branch searches.
     */
    private static SearchSourceBuilder fetchSourceLikeTheUser(
        SearchSourceBuilder user,
        QueryBuilder query,
        int window,
        FetchSourceContext fetch,
        List<SearchExtBuilder> exts
    ) {
        SearchSourceBuilder s = new SearchSourceBuilder().query(query).from(0).size(window).trackTotalHits(false);
        BranchRequests.copyIfSet(fetch, s::fetchSource);
        BranchRequests.copyIfSet(user.storedFields(), s::storedFields);
        if (user.docValueFields() != null) {
            for (FieldAndFormat f : user.docValueFields()) {
                s.docValueField(f.field, f.format);
            }
        }
        if (user.fetchFields() != null) {
            for (FieldAndFormat f : user.fetchFields()) {
                s.fetchField(f.field, f.format);
            }
        }
        BranchRequests.copyIfSet(user.highlighter(), s::highlighter);
        BranchRequests.copyIfSet(user.timeout(), s::timeout);
        BranchRequests.copyIfSet(user.version(), s::version);
        s.seqNoAndPrimaryTerm(true); // how the fetched hits are matched to the candidates
        s.ext(exts);
        return s;
    }
}
