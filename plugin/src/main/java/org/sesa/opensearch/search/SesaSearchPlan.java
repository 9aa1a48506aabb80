package org.sesa.opensearch.search;

import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.core.action.ActionListener;
import org.opensearch.search.SearchHit;
import org.opensearch.common.xcontent.support.XContentMapValues;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.search.fetch.subphase.FetchSourceContext;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.inference.v1.Timing;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.query.QueryEncoding;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Everything {@code sesa_query} decided for one search, handed to {@code sesa_fuse} and {@code sesa_rerank}
 * through the {@link PipelineProcessingContext} (one per search request). {@code sesa_fuse} adds the fused
 * ranking; {@code sesa_rerank} reads it.
 */
public final class SesaSearchPlan {

    /** Context attribute holding the plan. */
    public static final String CONTEXT_KEY = "sesa.plan";

    private final SesaSearchExt ext;
    private final SesaFieldNames names;
    private volatile QueryEncoding encoding;
    private final boolean encodingCached;
    private volatile Map<Branch, QueryBuilder> queries;
    private final int from;
    private final int size;
    private final int window;
    private final FetchSourceContext userSource;
    private final boolean sourceAugmented;
    private volatile List<Branch> otherBranches;
    private final PendingResult<MultiSearchResponse> otherResults;
    private final long startNanos;

    private volatile List<String> textFields;
    private volatile List<String> chunkTextFields;
    private volatile List<Candidate> ranking;
    private volatile Map<String, Object> responseInfo;
    private volatile String degradedReason;
    private volatile SearchEvidence evidence = SearchEvidence.NONE;
    private volatile long encodeNanos = -1;
    private volatile Map<String, Object> encodeServer;
    private volatile AtomicLong sideBranchesNanos = new AtomicLong(-1);
    private volatile HitBackfill backfill;
    private volatile boolean mainBranchLean;
    private volatile boolean stripSeqNo;
    private final AtomicInteger vanished = new AtomicInteger();
    private final AtomicLong backfillNanos = new AtomicLong(-1);

    /**
     * @param queries         the branch queries that exist (a branch without a query, e.g. a query with no
     *                        concepts, returns nothing)
     * @param userSource      the request's own {@code _source} setting (null: the default, full source)
     * @param sourceAugmented whether the fetch was widened beyond {@code userSource} (undone in the response)
     * @param otherBranches   the branches running in the side msearch, in its item order (empty if none)
     * @param otherResults    completes with that msearch; null when there is none
     */
    public SesaSearchPlan(
        SesaSearchExt ext,
        SesaFieldNames names,
        QueryEncoding encoding,
        boolean encodingCached,
        Map<Branch, QueryBuilder> queries,
        int from,
        int size,
        int window,
        FetchSourceContext userSource,
        boolean sourceAugmented,
        List<Branch> otherBranches,
        PendingResult<MultiSearchResponse> otherResults,
        long startNanos
    ) {
        this.ext = Objects.requireNonNull(ext);
        this.names = Objects.requireNonNull(names);
        this.encoding = encoding;
        this.encodingCached = encodingCached;
        this.queries = queries.isEmpty() ? Map.of() : new EnumMap<>(queries);
        this.from = from;
        this.size = size;
        this.window = window;
        this.userSource = userSource;
        this.sourceAugmented = sourceAugmented;
        this.otherBranches = List.copyOf(otherBranches);
        this.otherResults = otherResults;
        this.startNanos = startNanos;
    }

    public static SesaSearchPlan from(PipelineProcessingContext context) {
        return context == null ? null : (SesaSearchPlan) context.getAttribute(CONTEXT_KEY);
    }

    public SesaSearchExt ext() {
        return ext;
    }

    public SearchMode mode() {
        return ext.mode();
    }

    /** The branch that travels in the original request: the mode's first. */
    public Branch mainBranch() {
        return ext.mode().branches().get(0);
    }

    public SesaFieldNames names() {
        return names;
    }

    /**
     * The fields whose text rerank reads for this search: those of its {@code ext.sesa.field}; null when the search
     * names none (the rerank processor's own {@code text_fields} then).
     */
    public List<String> textFields() {
        return textFields;
    }

    public void textFields(List<String> fields) {
        this.textFields = fields == null ? null : List.copyOf(fields);
    }

    /**
     * Non-null when the dense branch scored each document by its best window ({@code <prefix>_chunks}): the fields
     * whose joined text the windows' offsets point into, for {@code _sesa.passage} (see {@link Passages}).
     */
    public List<String> chunkTextFields() {
        return chunkTextFields;
    }

    public void chunkTextFields(List<String> fields) {
        this.chunkTextFields = fields == null ? null : List.copyOf(fields);
    }

    public int from() {
        return from;
    }

    public int size() {
        return size;
    }

    public int window() {
        return window;
    }

    public long startNanos() {
        return startNanos;
    }

    /** Null in bm25 mode (the query is not encoded) and when a degraded hybrid search could not encode it. */
    public QueryEncoding encoding() {
        return encoding;
    }

    public boolean encodingCached() {
        return encodingCached;
    }

    /**
     * A hybrid search whose BM25 branch started before the query was encoded: the encoding arrived, and the side
     * branches it made possible are now running. Called before {@link #otherResults()} completes, which publishes it.
     */
    public void sideBranchesStarted(QueryEncoding encoding, Map<Branch, QueryBuilder> sideQueries, List<Branch> branches) {
        this.encoding = encoding;
        Map<Branch, QueryBuilder> all = new EnumMap<>(Branch.class);
        all.putAll(queries);
        all.putAll(sideQueries);
        this.queries = all;
        this.otherBranches = List.copyOf(branches);
    }

    public List<Branch> otherBranches() {
        return otherBranches;
    }

    public Map<Branch, QueryBuilder> queries() {
        return queries;
    }

    public PendingResult<MultiSearchResponse> otherResults() {
        return otherResults;
    }

    /** The search goes on with less than it asked for (e.g. BM25 only while the inference server is down). */
    public void degrade(String reason) {
        this.degradedReason = Objects.requireNonNull(reason);
    }

    /** Why this search is degraded before rerank, or null. */
    public String degradedReason() {
        return degradedReason;
    }

    /** How long the query's Encode call took (not set when the encoding came from the cache or was not needed). */
    public void encodeTook(long nanos) {
        this.encodeNanos = nanos;
    }

    /**
     * The inference server's own timing of the query's Encode call ({@code EncodeResponse.timing}), reported as
     * {@code ext.sesa.timing.encode_server}. Not set when the call did not happen (bm25 mode), failed, or answered
     * without a timing (a server older than the field); nor when the encoding came from the cache: a cached encoding
     * cost the server nothing for this search, so {@code encode_server} is absent then (like {@code encode_ms}), not
     * the timing of the call that once filled the cache.
     */
    public void encodeServerTiming(Map<String, Object> timing) {
        this.encodeServer = timing;
    }

    /**
     * Where the side branches' msearch duration is written (from its start to its answer); the msearch may
     * start, and even finish, before this plan exists.
     */
    public void sideBranchesClock(AtomicLong clock) {
        this.sideBranchesNanos = clock;
    }

    /**
     * How lean hits (keys and scores) get their source and fields. The side branches are always lean; the main
     * branch is when {@code mainBranchLean} (otherwise it fetched in place, e.g. for highlights). Set by
     * {@code sesa_query} for every search.
     */
    public void backfill(HitBackfill backfill, boolean mainBranchLean, boolean userAskedSeqNo) {
        this.backfill = backfill;
        this.mainBranchLean = mainBranchLean;
        this.stripSeqNo = userAskedSeqNo == false;
    }

    /** Whether the hits carry {@code _seq_no} only because the branches are matched by it (removed from the page). */
    public boolean stripSeqNo() {
        return stripSeqNo;
    }

    /** Whether the main branch's hits are lean too (then every hit of the page is fetched afterwards). */
    public boolean mainBranchLean() {
        return mainBranchLean;
    }

    public HitBackfill backfill() {
        return backfill;
    }

    /**
     * Fetches the partial candidates among the first {@code n} of the ranking (one msearch for all of them) and
     * puts the fetched hits into the ranking, and looks up the best window of the others when the search names
     * passages ({@link HitBackfill#looksUpPassages}); completes at once when there is nothing to fetch. A candidate
     * whose document was updated or deleted since its branch search found it is dropped, and the head is completed
     * again from the candidates behind it. A failed fetch goes to the listener.
     */
    public void completeHead(int n, ActionListener<Void> listener) {
        List<Candidate> current = ranking;
        int upTo = Math.min(Math.max(0, n), current == null ? 0 : current.size());
        List<DocKey> missing = new ArrayList<>();
        List<DocKey> passagesOnly = new ArrayList<>(); // fetched by their branch, but the best window is still unknown
        boolean lookup = backfill != null && backfill.looksUpPassages();
        for (int i = 0; i < upTo; i++) {
            Candidate c = current.get(i);
            if (c.partial()) {
                missing.add(c.key());
            } else if (lookup && c.passageLookup().looked() == false) {
                passagesOnly.add(c.key());
            }
        }
        if (missing.isEmpty() && passagesOnly.isEmpty()) {
            listener.onResponse(null);
            return;
        }
        long started = System.nanoTime();
        backfill.fetch(missing, passagesOnly, new ActionListener<>() {
            @Override
            public void onResponse(Map<DocKey, SearchHit> found) {
                backfillNanos.accumulateAndGet(System.nanoTime() - started, (a, b) -> Math.max(0, a) + b);
                List<Candidate> next = new ArrayList<>(current.size());
                int dropped = 0;
                for (int i = 0; i < current.size(); i++) {
                    Candidate c = current.get(i);
                    if (i < upTo && c.partial()) {
                        SearchHit full = found.get(c.key());
                        if (full == null) {
                            dropped++;
                            continue;
                        }
                        c = c.withFetchedHit(full, names.chunks());
                    } else if (i < upTo && lookup && c.passageLookup().looked() == false) {
                        SearchHit lean = found.get(c.key());
                        // not found: changed since its branch search; its passage then comes from its source, if any
                        c = lean == null ? c : c.withPassageLookup(Passages.lookedUp(lean, names.chunks()));
                    }
                    next.add(c);
                }
                ranking(next);
                if (dropped > 0) {
                    vanished.addAndGet(dropped);
                    completeHead(n, listener);
                } else {
                    listener.onResponse(null);
                }
            }

            @Override
            public void onFailure(Exception e) {
                listener.onFailure(e);
            }
        });
    }

    /** Head candidates dropped because their document changed or vanished before it was fetched. */
    public int vanished() {
        return vanished.get();
    }

    /**
     * {@code ext.sesa.timing}: where the time of this search went, in milliseconds (null: did not happen), and, as
     * {@code encode_server}, where the inference server says the query's Encode call spent its time (absent when
     * there is no such timing, see {@link #encodeServerTiming}).
     */
    public Map<String, Object> timing() {
        Map<String, Object> t = new LinkedHashMap<>();
        t.put("encode_ms", millis(encodeNanos));
        t.put("side_branches_ms", millis(sideBranchesNanos.get()));
        t.put("backfill_ms", millis(backfillNanos.get()));
        t.put("total_ms", millis(System.nanoTime() - startNanos));
        Map<String, Object> server = encodeServer;
        if (server != null) {
            t.put("encode_server", server);
        }
        return t;
    }

    /**
     * A server's {@code Timing} of one call as the response reports it: {@code queue_ms}, {@code compute_ms},
     * {@code tokenize_ms}, {@code total_ms} (to 0.01 ms) and {@code priority} ({@code "interactive"} or
     * {@code "bulk"}; null when the server did not say); null when {@code present} is false (a server older than the
     * field sends none).
     */
    public static Map<String, Object> serverTiming(boolean present, Timing timing) {
        if (present == false || timing == null) {
            return null;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("queue_ms", serverMillis(timing.getQueueMs()));
        m.put("compute_ms", serverMillis(timing.getComputeMs()));
        m.put("tokenize_ms", serverMillis(timing.getTokenizeMs()));
        m.put("total_ms", serverMillis(timing.getTotalMs()));
        m.put("priority", timing.getPriority().isEmpty() ? null : timing.getPriority());
        return m;
    }

    private static Double serverMillis(float ms) {
        return Float.isFinite(ms) ? Math.round(ms * 100.0) / 100.0 : null;
    }

    private static Double millis(long nanos) {
        return nanos < 0 ? null : Math.round(nanos / 1e5) / 10.0;
    }

    /**
     * The {@code _source} the user asked for, made from what was fetched: unchanged unless the fetch was widened
     * (to read concept weights or rerank texts), then the user's own filter is applied again; null means no source.
     */
    public Map<String, Object> visibleSource(Map<String, Object> fetched) {
        if (sourceAugmented == false || fetched == null) {
            return fetched;
        }
        if (userSource.fetchSource() == false) {
            return null;
        }
        return XContentMapValues.filter(fetched, userSource.includes(), userSource.excludes());
    }

    public boolean sourceAugmented() {
        return sourceAugmented;
    }

    /** The fused ranking of every candidate (set by sesa_fuse). */
    public List<Candidate> ranking() {
        return ranking;
    }

    public void ranking(List<Candidate> ranking) {
        this.ranking = List.copyOf(ranking);
    }

    /** The evidence record the candidates' indices share, if any (resolved by sesa_fuse, read by sesa_rerank). */
    public SearchEvidence evidence() {
        return evidence;
    }

    public void evidence(SearchEvidence evidence) {
        this.evidence = Objects.requireNonNull(evidence);
    }

    /** The response's {@code ext.sesa} so far (set by sesa_fuse, extended by sesa_rerank). */
    public Map<String, Object> responseInfo() {
        return responseInfo;
    }

    public void responseInfo(Map<String, Object> info) {
        this.responseInfo = info;
    }
}
