package org.sesa.opensearch.search.processor;

import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.ExceptionsHelper;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.common.regex.Regex;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.index.query.BoolQueryBuilder;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.index.query.QueryBuilders;
import org.opensearch.index.query.MatchNoneQueryBuilder;
import org.opensearch.search.SearchExtBuilder;
import org.opensearch.search.SearchHit;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.fetch.StoredFieldsContext;
import org.opensearch.search.fetch.subphase.FetchSourceContext;
import org.opensearch.search.fetch.subphase.FieldAndFormat;
import org.opensearch.search.pipeline.AbstractProcessor;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.opensearch.search.pipeline.SearchRequestProcessor;
import org.opensearch.search.sort.ScoreSortBuilder;
import org.opensearch.search.sort.SortBuilder;
import org.sesa.inference.v1.EncodeOptions;
import org.sesa.inference.v1.EncodeRequest;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.inference.v1.TextKind;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.DocKey;
import org.sesa.opensearch.search.HitBackfill;
import org.sesa.opensearch.search.PendingResult;
import org.sesa.opensearch.search.QueryEncodingException;
import org.sesa.opensearch.search.SearchMode;
import org.sesa.opensearch.search.SesaSearchPlan;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.query.BranchQueries;
import org.sesa.opensearch.search.query.QueryEncoding;
import org.sesa.opensearch.search.query.QueryEncodingCache;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code sesa_query}: turns a search that carries {@code ext.sesa} into the branch searches of its mode.
 *
 * <ol>
 *   <li>Encodes the query text once (TEXT_KIND_QUERY) through the {@link InferenceClient}, or takes the encoding
 *       from an LRU cache; bm25 mode makes no call at all.</li>
 *   <li>Builds the branch queries (see {@link BranchQueries}); the user's {@code query} filters every branch.</li>
 *   <li>Rewrites the request into the mode's first branch with {@code from: 0, size: window}, and starts the other
 *       branches (hybrid) at once as one msearch, so they run alongside the main search. The side branches fetch
 *       ids and scores only, named by {@code _seq_no} (see {@link DocKey}); the few of their hits that reach the page
 *       or the rerank head get their source and fields from one search afterwards (see {@link HitBackfill}).</li>
 *   <li>Leaves a {@link SesaSearchPlan} in the pipeline context for {@code sesa_fuse} and {@code sesa_rerank}.</li>
 * </ol>
 *
 * A hybrid search whose query encoding is not cached does not wait for it: the BM25 branch needs no vector, so
 * the request goes on at once as the BM25 search while the {@code Encode} call is in flight, and the dense and
 * concept branches start when the encoding arrives. Hybrid latency is then about max(BM25, Encode) plus the
 * side branches, not their sum. If the encoding fails because the server is down, slow or overloaded, the
 * search degrades to its BM25 branch, marked {@code degraded} with the reason; with {@code strict} (the
 * processor's setting or {@code ext.sesa.strict}) it fails with the server's status instead. A query the server
 * rejects (INVALID_ARGUMENT) always fails. Single-branch dense and concept searches fail when Encode fails.
 *
 * A search without {@code ext.sesa} passes through untouched. Asynchronous only: the transport or search
 * thread that runs the pipeline never waits for the inference server.
 */
public final class SesaQueryProcessor extends AbstractProcessor implements SearchRequestProcessor {

    public static final String TYPE = "sesa_query";
    /** Side branch requests never run a search pipeline (no recursion through an index default pipeline). */
    static final String NO_PIPELINE = "_none";

    private final List<String> textFields;
    private final SesaFieldNames names;
    private final int windowSize;
    private final int knnK;
    private final int topKConcepts;
    private final TimeValue timeout;
    private final boolean strict;
    private final InferenceClient client;
    private final BranchSearcher searcher;
    private final NamedXContentRegistry registry;
    private final QueryEncodingCache cache;

    SesaQueryProcessor(
        String tag,
        String description,
        boolean ignoreFailure,
        List<String> textFields,
        String prefix,
        int windowSize,
        int knnK,
        int topKConcepts,
        int cacheSize,
        TimeValue timeout,
        boolean strict,
        InferenceClient client,
        BranchSearcher searcher,
        NamedXContentRegistry registry
    ) {
        super(tag, description, ignoreFailure);
        this.textFields = List.copyOf(textFields);
        this.names = SesaFieldNames.forPrefix(prefix);
        this.windowSize = windowSize;
        this.knnK = knnK;
        this.topKConcepts = topKConcepts;
        this.timeout = timeout;
        this.strict = strict;
        this.client = Objects.requireNonNull(client);
        this.searcher = Objects.requireNonNull(searcher);
        this.registry = Objects.requireNonNull(registry);
        this.cache = new QueryEncodingCache(cacheSize);
    }

    @Override
    public String getType() {
        return TYPE;
    }

    public List<String> getTextFields() {
        return textFields;
    }

    public String getTargetPrefix() {
        return names.prefix();
    }

    public int getWindowSize() {
        return windowSize;
    }

    public int getKnnK() {
        return knnK;
    }

    public int getTopKConcepts() {
        return topKConcepts;
    }

    public TimeValue getTimeout() {
        return timeout;
    }

    public boolean isStrict() {
        return strict;
    }

    public QueryEncodingCache cache() {
        return cache;
    }

    /** The synchronous path would block a search thread on the network; OpenSearch calls the async one. */
    @Override
    public SearchRequest processRequest(SearchRequest request) {
        throw new UnsupportedOperationException("[" + TYPE + "] is asynchronous; call processRequestAsync");
    }

    @Override
    public void processRequestAsync(SearchRequest request, PipelineProcessingContext context, ActionListener<SearchRequest> listener) {
        SesaSearchExt ext = SesaSearchExt.find(request.source());
        if (ext == null) {
            listener.onResponse(request);
            return;
        }
        long start = System.nanoTime();
        try {
            checkSupported(request);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        if (ext.mode().needsEncoding() == false) {
            complete(request, context, ext, null, false, start, -1, listener);
            return;
        }
        QueryEncoding cached = cache.get(ext.queryText());
        if (cached != null) {
            complete(request, context, ext, cached, true, start, -1, listener);
            return;
        }
        EncodeRequest encode = EncodeRequest.newBuilder()
            .addTexts(ext.queryText())
            .setOptions(EncodeOptions.newBuilder().setKind(TextKind.TEXT_KIND_QUERY).setTopKConcepts(topKConcepts))
            .build();
        if (ext.mode().isHybrid()) {
            startBm25WhileEncoding(request, context, ext, encode, start, listener);
            return;
        }
        client.encode(encode, timeout, new ActionListener<>() {
            @Override
            public void onResponse(EncodeResponse response) {
                QueryEncoding encoding;
                try {
                    encoding = QueryEncoding.from(response, TYPE);
                } catch (Exception e) {
                    listener.onFailure(e);
                    return;
                }
                cache.put(ext.queryText(), encoding);
                complete(request, context, ext, encoding, false, start, System.nanoTime() - start, listener);
            }

            @Override
            public void onFailure(Exception e) {
                listener.onFailure(e);
            }
        });
    }

    /**
     * Hybrid without a cached encoding: the request continues at once as the BM25 branch; the side branches start
     * from the Encode callback, or the search degrades to BM25 (see the class comment).
     */
    private void startBm25WhileEncoding(
        SearchRequest request,
        PipelineProcessingContext context,
        SesaSearchExt ext,
        EncodeRequest encode,
        long start,
        ActionListener<SearchRequest> listener
    ) {
        SearchRequest template = new SearchRequest(request); // the side branches copy indices, routing, preference
        SearchSourceBuilder userSource = request.source();
        PendingResult<MultiSearchResponse> sides = new PendingResult<>();
        SearchRequest rewritten;
        try {
            rewritten = rewrite(request, context, ext, null, false, start, sides);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        SesaSearchPlan plan = SesaSearchPlan.from(context);
        boolean failHard = ext.strict() != null ? ext.strict() : strict;
        client.encode(encode, timeout, new ActionListener<>() {
            @Override
            public void onResponse(EncodeResponse response) {
                plan.encodeTook(System.nanoTime() - start);
                QueryEncoding encoding;
                try {
                    encoding = QueryEncoding.from(response, TYPE);
                } catch (Exception e) {
                    sides.onFailure(new QueryEncodingException(e.getMessage(), ExceptionsHelper.status(e), e));
                    return;
                }
                try {
                    cache.put(ext.queryText(), encoding);
                    Map<Branch, QueryBuilder> queries = buildQueries(ext, encoding, userSource.query());
                    queries.remove(Branch.BM25);
                    startSideBranches(template, userSource, ext, encoding, queries, plan, sides);
                } catch (Exception e) {
                    sides.onFailure(e);
                }
            }

            @Override
            public void onFailure(Exception e) {
                plan.encodeTook(System.nanoTime() - start);
                RestStatus status = ExceptionsHelper.status(e);
                boolean unavailable = status.getStatus() >= 500 || status == RestStatus.TOO_MANY_REQUESTS;
                if (unavailable && failHard == false) {
                    plan.degrade("query encoding failed, BM25 only: " + e.getMessage());
                    plan.sideBranchesStarted(null, Map.of(), List.of());
                    sides.onResponse(new MultiSearchResponse(new MultiSearchResponse.Item[0], 0L));
                } else {
                    String why = unavailable ? " and strict is set" : "";
                    sides.onFailure(new QueryEncodingException("[" + TYPE + "] the query encoding failed" + why + ": " + e.getMessage(), status, e));
                }
            }
        });
        listener.onResponse(rewritten);
    }

    /** Starts the side branches of a deferred hybrid search as one msearch; completes {@code sides}. */
    private void startSideBranches(
        SearchRequest template,
        SearchSourceBuilder userSource,
        SesaSearchExt ext,
        QueryEncoding encoding,
        Map<Branch, QueryBuilder> queries,
        SesaSearchPlan plan,
        PendingResult<MultiSearchResponse> sides
    ) {
        List<SearchExtBuilder> otherExts = otherExts(userSource);
        List<Branch> others = new ArrayList<>();
        MultiSearchRequest msearch = new MultiSearchRequest();
        for (Branch b : sideBranches(ext.mode())) {
            QueryBuilder q = queries.get(b);
            if (q != null) {
                msearch.add(sideBranchRequest(template, userSource, q, plan.window(), otherExts));
                others.add(b);
            }
        }
        plan.sideBranchesStarted(encoding, queries, others);
        if (others.isEmpty()) {
            sides.onResponse(new MultiSearchResponse(new MultiSearchResponse.Item[0], 0L));
            return;
        }
        AtomicLong clock = new AtomicLong(-1);
        plan.sideBranchesClock(clock);
        searcher.multiSearch(msearch, timed(clock, sides));
    }

    /** Writes how long the side branches' msearch took into {@code clock}, then passes its answer on. */
    private static ActionListener<MultiSearchResponse> timed(AtomicLong clock, PendingResult<MultiSearchResponse> target) {
        long started = System.nanoTime();
        return new ActionListener<>() {
            @Override
            public void onResponse(MultiSearchResponse r) {
                clock.set(System.nanoTime() - started);
                target.onResponse(r);
            }

            @Override
            public void onFailure(Exception e) {
                clock.set(System.nanoTime() - started);
                target.onFailure(e);
            }
        };
    }

    private static List<SearchExtBuilder> otherExts(SearchSourceBuilder source) {
        List<SearchExtBuilder> out = new ArrayList<>();
        for (SearchExtBuilder b : source.ext()) {
            if (b instanceof SesaSearchExt == false) {
                out.add(b);
            }
        }
        return out;
    }

    /**
     * A side branch's search: ids and scores only (plus the user's post filter, timeout and explain). It loads no
     * stored field; its hits are named by {@code _seq_no} (see {@link DocKey}), and the few of them that reach the
     * page or the rerank head are fetched afterwards ({@link #backfill}).
     */
    private static SearchRequest sideBranchRequest(
        SearchRequest template,
        SearchSourceBuilder userSource,
        QueryBuilder query,
        int window,
        List<SearchExtBuilder> exts
    ) {
        SearchSourceBuilder s = lean(new SearchSourceBuilder().query(query).from(0).size(window).trackTotalHits(false));
        if (userSource.postFilter() != null) {
            s.postFilter(userSource.postFilter());
        }
        if (userSource.timeout() != null) {
            s.timeout(userSource.timeout());
        }
        if (userSource.explain() != null) {
            s.explain(userSource.explain());
        }
        s.ext(exts);
        return withSource(template, s);
    }

    /** No source, no stored field (not even {@code _id}); {@code _seq_no} and {@code _primary_term} from doc values. */
    private static SearchSourceBuilder lean(SearchSourceBuilder s) {
        return s.fetchSource(false).storedFields(List.of(StoredFieldsContext._NONE_)).seqNoAndPrimaryTerm(true);
    }

    private static SearchRequest withSource(SearchRequest template, SearchSourceBuilder source) {
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

    /**
     * Fetches lean hits the way the main branch fetches its own: per shard of an index, one search (all of them as
     * one msearch) for the sequence numbers on that shard, with the user's source and fields settings.
     */
    private HitBackfill backfill(SearchRequest template, SearchSourceBuilder userSource, FetchSourceContext fetch, List<SearchExtBuilder> exts) {
        return (keys, listener) -> {
            Map<ShardRef, List<DocKey>> byShard = new LinkedHashMap<>();
            for (DocKey k : keys) {
                byShard.computeIfAbsent(new ShardRef(k.index(), k.shard()), x -> new ArrayList<>()).add(k);
            }
            List<ShardRef> shards = new ArrayList<>(byShard.keySet());
            MultiSearchRequest msearch = new MultiSearchRequest();
            for (ShardRef shard : shards) {
                List<DocKey> wanted = byShard.get(shard);
                List<Long> seqNos = wanted.stream().map(DocKey::seqNo).toList();
                QueryBuilder q = QueryBuilders.boolQuery().filter(QueryBuilders.termsQuery("_seq_no", seqNos));
                // one shard: each sequence number names at most one live document there; an unknown shard may
                // hold a document with the same number on each shard of the index
                int size = shard.shard() >= 0 ? wanted.size() : wanted.size() * 32;
                SearchRequest r = withSource(template, fetchSourceLikeTheUser(userSource, q, size, fetch, exts));
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
        };
    }

    /** A shard of an index (shard -1: unknown), the unit the page fetch searches. */
    private record ShardRef(String index, int shard) {}

    /** Builds the plan and the rewritten request; failures go to the listener, never to the caller. */
    private void complete(
        SearchRequest request,
        PipelineProcessingContext context,
        SesaSearchExt ext,
        QueryEncoding encoding,
        boolean cached,
        long start,
        long encodeNanos,
        ActionListener<SearchRequest> listener
    ) {
        SearchRequest rewritten;
        try {
            rewritten = rewrite(request, context, ext, encoding, cached, start, null);
            SesaSearchPlan.from(context).encodeTook(encodeNanos);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        listener.onResponse(rewritten);
    }

    SearchRequest rewrite(
        SearchRequest request,
        PipelineProcessingContext context,
        SesaSearchExt ext,
        QueryEncoding encoding,
        boolean cached,
        long start,
        PendingResult<MultiSearchResponse> deferredSides
    ) {
        SearchSourceBuilder source = request.source();
        int from = Math.max(0, source.from());
        int size = source.size() < 0 ? 10 : source.size();
        int window = Math.max(windowSize, from + size);
        Map<Branch, QueryBuilder> queries = buildQueries(ext, encoding, source.query());

        // _source: keep what the user asked for, but fetch what explanations and rerank read.
        FetchSourceContext userSource = source.fetchSource();
        FetchSourceContext fetch = widenSource(userSource, neededSourceFields(ext));
        boolean augmented = fetch != userSource;

        List<SearchExtBuilder> otherExts = otherExts(source);
        SearchRequest template = new SearchRequest(request); // before the rewrite: indices, routing, preference

        // The other branches: one msearch, started now so it runs alongside the main search; or, when the
        // encoding is still in flight (deferredSides), started by its callback.
        List<Branch> others = new ArrayList<>();
        AtomicLong sideClock = new AtomicLong(-1);
        PendingResult<MultiSearchResponse> otherResults = deferredSides;
        if (deferredSides == null) {
            MultiSearchRequest msearch = new MultiSearchRequest();
            for (Branch b : sideBranches(ext.mode())) {
                QueryBuilder q = queries.get(b);
                if (q == null) {
                    continue; // e.g. a query without concepts: that branch is empty
                }
                msearch.add(sideBranchRequest(template, source, q, window, otherExts));
                others.add(b);
            }
            if (others.isEmpty() == false) {
                otherResults = new PendingResult<>();
                try {
                    searcher.multiSearch(msearch, timed(sideClock, otherResults));
                } catch (Exception e) {
                    otherResults.onFailure(e);
                }
            }
        }

        Branch main = ext.mode().branches().get(0);
        SearchSourceBuilder mainSource = source.shallowCopy();
        mainSource.query(queries.getOrDefault(main, new MatchNoneQueryBuilder()));
        mainSource.from(0);
        mainSource.size(window);
        mainSource.ext(otherExts);
        if (ext.mode().isHybrid() && source.trackTotalHitsUpTo() == null) {
            // hybrid reports the fused candidate count as its total: counting every BM25 match would be
            // CPU spent for nothing, next to the Encode call it overlaps with
            mainSource.trackTotalHits(false);
        }
        // The main branch's window is lean too (names from doc values, nothing stored loaded) unless the user asks
        // for highlights or fields; the page's hits (or the rerank head) are fetched afterwards. Either way its
        // hits carry _seq_no, the key the lean side branches' hits are matched by (see DocKey).
        boolean leanMain = fetchesOnlySource(source);
        if (leanMain) {
            lean(mainSource);
        } else if (augmented) {
            mainSource.fetchSource(fetch);
        }
        mainSource.seqNoAndPrimaryTerm(true);
        request.source(mainSource);

        SesaSearchPlan plan = new SesaSearchPlan(
            ext, names, encoding, cached, queries, from, size, window, userSource, augmented, others, otherResults, start
        );
        plan.sideBranchesClock(sideClock);
        plan.backfill(backfill(template, source, fetch, otherExts), leanMain, Boolean.TRUE.equals(source.seqNoAndPrimaryTerm()));
        context.setAttribute(SesaSearchPlan.CONTEXT_KEY, plan);
        return request;
    }

    /** The branch queries of the mode; a branch the query cannot fill (no vector, no concepts) is left out. */
    Map<Branch, QueryBuilder> buildQueries(SesaSearchExt ext, QueryEncoding encoding, QueryBuilder userQuery) {
        Map<String, Object> filter = BranchQueries.toMap(userQuery);
        Map<Branch, QueryBuilder> out = new EnumMap<>(Branch.class);
        for (Map.Entry<Branch, Map<String, Object>> e : branchJson(ext, encoding, filter).entrySet()) {
            out.put(e.getKey(), BranchQueries.parse(e.getValue(), registry));
        }
        return out;
    }

    /** The branch queries as JSON (what {@link #buildQueries} parses). */
    public Map<Branch, Map<String, Object>> branchJson(SesaSearchExt ext, QueryEncoding encoding, Map<String, Object> filter) {
        Map<Branch, Map<String, Object>> out = new EnumMap<>(Branch.class);
        for (Branch b : ext.mode().branches()) {
            Map<String, Object> json = switch (b) {
                case BM25 -> BranchQueries.bm25(ext.queryText(), textFields, filter);
                case DENSE -> encoding == null || encoding.dense().length == 0
                    ? null
                    : BranchQueries.dense(names.dense(), encoding.dense(), knnK, filter);
                case CONCEPTS -> encoding == null ? null : BranchQueries.concepts(names.concepts(), encoding.concepts(), filter);
            };
            if (json != null) {
                out.put(b, json);
            }
        }
        return out;
    }

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
        if (fetch != null) {
            s.fetchSource(fetch);
        }
        if (user.storedFields() != null) {
            s.storedFields(user.storedFields());
        }
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
        if (user.highlighter() != null) {
            s.highlighter(user.highlighter());
        }
        if (user.timeout() != null) {
            s.timeout(user.timeout());
        }
        if (user.version() != null) {
            s.version(user.version());
        }
        s.seqNoAndPrimaryTerm(true); // how the fetched hits are matched to the candidates
        s.ext(exts);
        return s;
    }

    /** Source fields the response processors read: concept weights (explanations) and texts (rerank). */
    private List<String> neededSourceFields(SesaSearchExt ext) {
        Set<String> out = new LinkedHashSet<>();
        if (ext.explain()) {
            out.add(names.concepts());
        }
        if (Boolean.FALSE.equals(ext.rerank()) == false) {
            for (String f : textFields) {
                int caret = f.indexOf('^');
                out.add(caret < 0 ? f : f.substring(0, caret));
            }
        }
        return List.copyOf(out);
    }

    /**
     * The user's {@code _source} setting widened by {@code needed} fields, or the same instance when it already
     * returns them (no setting means the full source).
     */
    static FetchSourceContext widenSource(FetchSourceContext user, List<String> needed) {
        if (user == null || needed.isEmpty()) {
            return user;
        }
        if (user.fetchSource() == false) {
            return new FetchSourceContext(true, needed.toArray(String[]::new), new String[0]);
        }
        boolean changed = false;
        List<String> includes = new ArrayList<>(Arrays.asList(user.includes()));
        if (includes.isEmpty() == false) {
            for (String f : needed) {
                if (Regex.simpleMatch(user.includes(), f) == false) {
                    includes.add(f);
                    changed = true;
                }
            }
        }
        List<String> excludes = new ArrayList<>();
        for (String x : user.excludes()) {
            boolean hidesNeeded = needed.stream().anyMatch(f -> Regex.simpleMatch(x, f) || f.startsWith(x + "."));
            if (hidesNeeded) {
                changed = true;
            } else {
                excludes.add(x);
            }
        }
        return changed ? new FetchSourceContext(true, includes.toArray(String[]::new), excludes.toArray(String[]::new)) : user;
    }

    /** Requests whose order or paging fusion cannot honour fail with a 400 that says why. */
    static void checkSupported(SearchRequest request) {
        SearchSourceBuilder s = request.source();
        String what = null;
        if (request.scroll() != null) {
            what = "scroll";
        } else if (s.pointInTimeBuilder() != null) {
            what = "pit";
        } else if (s.searchAfter() != null) {
            what = "search_after";
        } else if (s.sorts() != null && s.sorts().stream().anyMatch(SesaQueryProcessor::isNotScoreSort)) {
            what = "sort";
        } else if (s.collapse() != null) {
            what = "collapse";
        } else if (s.rescores() != null && s.rescores().isEmpty() == false) {
            what = "rescore";
        } else if (s.minScore() != null) {
            what = "min_score";
        } else if (s.slice() != null) {
            what = "slice";
        }
        if (what != null) {
            throw new IllegalArgumentException(
                "[ext.sesa] cannot be combined with [" + what + "]: the SESA pipeline orders the hits by fused score and pages with from/size"
            );
        }
    }

    private static boolean isNotScoreSort(SortBuilder<?> sort) {
        return sort instanceof ScoreSortBuilder == false;
    }

    /** For tests: the mode's branches minus the main one. */
    static List<Branch> sideBranches(SearchMode mode) {
        return mode.branches().subList(1, mode.branches().size());
    }
}
