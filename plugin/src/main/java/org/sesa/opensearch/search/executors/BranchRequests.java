package org.sesa.opensearch.search.executors;

import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.search.SearchExtBuilder;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.fetch.StoredFieldsContext;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.DocKey;
import org.sesa.opensearch.search.SearchMode;
import org.sesa.opensearch.search.ext.SesaSearchExt;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The shapes of the searches {@link HybridSearchExecutor} sends next to the user's own: the lean side-branch
 * searches and what every such search copies from the user's request. One home for the lean-hit rule (a branch
 * loads no stored field, its hits are named by {@code _seq_no}, see {@link DocKey}), so the main branch, the side
 * branches and the backfill ({@link ShardHitBackfill}) cannot drift apart.
 */
final class BranchRequests {

    /** Side branch requests never run a search pipeline (no recursion through an index default pipeline). */
    static final String NO_PIPELINE = "_none";

    private BranchRequests() {}

    /** The side branches' msearch, and the branches it searches in its item order (empty: nothing to search). */
    record SideSearch(MultiSearchRequest msearch, List<Branch> branches) {}

    /**
     * One search per side branch of {@code mode} (all but its first) that has a query; a branch the query cannot
     * fill (no vector, no concepts) is left out.
     */
    static SideSearch sideSearch(
        SearchRequest template,
        SearchSourceBuilder userSource,
        SearchMode mode,
        Map<Branch, QueryBuilder> queries,
        int window,
        List<SearchExtBuilder> exts
    ) {
        List<Branch> branches = new ArrayList<>();
        MultiSearchRequest msearch = new MultiSearchRequest();
        for (Branch b : mode.branches().subList(1, mode.branches().size())) {
            QueryBuilder q = queries.get(b);
            if (q != null) {
                msearch.add(sideBranchRequest(template, userSource, q, window, exts));
                branches.add(b);
            }
        }
        return new SideSearch(msearch, branches);
    }

    /**
     * A side branch's search: ids and scores only (plus the user's post filter, timeout and explain). It loads no
     * stored field; its hits are named by {@code _seq_no} (see {@link DocKey}), and the few of them that reach the
     * page or the rerank head are fetched afterwards ({@link ShardHitBackfill}).
     */
    private static SearchRequest sideBranchRequest(
        SearchRequest template,
        SearchSourceBuilder userSource,
        QueryBuilder query,
        int window,
        List<SearchExtBuilder> exts
    ) {
        SearchSourceBuilder s = lean(new SearchSourceBuilder().query(query).from(0).size(window).trackTotalHits(false));
        copyIfSet(userSource.postFilter(), s::postFilter);
        copyIfSet(userSource.timeout(), s::timeout);
        copyIfSet(userSource.explain(), s::explain);
        s.ext(exts);
        return withSource(template, s);
    }

    /** Hands {@code value} of the user's search to {@code setter} of a branch search; an unset (null) value is left out. */
    static <T> void copyIfSet(T value, Consumer<? super T> setter) {
        if (value != null) {
            setter.accept(value);
        }
    }

    /** No source, no stored field (not even {@code _id}); {@code _seq_no} and {@code _primary_term} from doc values. */
    static SearchSourceBuilder lean(SearchSourceBuilder s) {
        return s.fetchSource(false).storedFields(List.of(StoredFieldsContext._NONE_)).seqNoAndPrimaryTerm(true);
    }

    /** A copy of {@code template} (indices, routing, preference, ...) searching {@code source}, outside any pipeline. */
    static SearchRequest withSource(SearchRequest template, SearchSourceBuilder source) {
        SearchRequest br = new SearchRequest(template);
        br.source(source);
        br.pipeline(NO_PIPELINE);
        return br;
    }

    /** No stored, docvalue or fetch fields, highlights, versions: a hit is its id, score and {@code _source}. */
    static boolean fetchesOnlySource(SearchSourceBuilder user) {
        return user.storedFields() == null
            && (user.docValueFields() == null || user.docValueFields().isEmpty())
            && (user.fetchFields() == null || user.fetchFields().isEmpty())
            && user.highlighter() == null
            && Boolean.TRUE.equals(user.version()) == false
            && Boolean.TRUE.equals(user.seqNoAndPrimaryTerm()) == false;
    }

    /** The request's search extensions other than {@code ext.sesa}: every search the executor sends carries them. */
    static List<SearchExtBuilder> otherExts(SearchSourceBuilder source) {
        List<SearchExtBuilder> out = new ArrayList<>();
        for (SearchExtBuilder b : source.ext()) {
            if (b instanceof SesaSearchExt == false) {
                out.add(b);
            }
        }
        return out;
    }
}
