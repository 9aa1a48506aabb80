package org.sesa.opensearch.search.executors;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.opensearch.ExceptionsHelper;
import org.opensearch.OpenSearchStatusException;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.index.query.MatchNoneQueryBuilder;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.search.SearchExtBuilder;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.fetch.subphase.FetchSourceContext;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.inference.v1.EncodeOptions;
import org.sesa.inference.v1.EncodeRequest;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.inference.v1.TextKind;
import org.sesa.opensearch.index.ChunkFieldLookup;
import org.sesa.opensearch.index.IndexModels;
import org.sesa.opensearch.index.SesaTextFieldLookup;
import org.sesa.opensearch.index.TargetModels;
import org.sesa.opensearch.index.TargetModelsLookup;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.DocKey;
import org.sesa.opensearch.search.HitBackfill;
import org.sesa.opensearch.search.Passages;
import org.sesa.opensearch.search.PendingResult;
import org.sesa.opensearch.search.QueryEncodingException;
import org.sesa.opensearch.search.SesaSearchPlan;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.query.BranchQueries;
import org.sesa.opensearch.search.query.BranchQueryFactory;
import org.sesa.opensearch.search.query.ConceptIdf;
import org.sesa.opensearch.search.query.QueryEncoding;
import org.sesa.opensearch.search.query.QueryEncodingCache;
import org.sesa.opensearch.util.SesaConventions;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Runs a SESA search's branches for {@code sesa_query}: the one place that orders Encode, the branch searches and
 * the backfill of their hits. For one request that carries {@code ext.sesa}:
 *
 * <ol>
 *   <li>Encodes the query text once (TEXT_KIND_QUERY) through the {@link InferenceClient}, the one gateway to the
 *       inference server, or takes the encoding from an LRU cache; bm25 mode makes no call at all.</li>
 *   <li>Checks the encoding's models against what the target indices record ({@code _meta.sesa.models.<prefix>},
 *       {@link TargetModelsLookup}), as {@code sesa_encode} checks a document's: vectors of one model are never
 *       compared with vectors of another. An encoding the server made with other models than the indices were
 *       encoded with refuses the search (400, naming both and the fix), and so do target indices whose records
 *       differ; indices without a record are searched as before. The cache is keyed by the record and the text, and
 *       only holds encodings that matched it, so it never serves an encoding of another model either.</li>
 *   <li>Builds the branch queries ({@link BranchQueryFactory}); the user's {@code query} filters every branch.</li>
 *   <li>Rewrites the request into the mode's first branch with {@code from: 0, size: window}, and starts the other
 *       branches (hybrid) at once as one msearch through the {@link BranchSearcher}, so they run alongside the main
 *       search. The branches fetch ids and scores only, named by {@code _seq_no} ({@link DocKey},
 *       {@link BranchRequests}); the few of their hits that reach the page or the rerank head get their source and
 *       fields from one search afterwards ({@link ShardHitBackfill}), with the {@code _source} widened to what the
 *       response processors read ({@link SourceWidening}). When the dense branch scores best windows and the search
 *       names passages ({@code explain} or rerank), that search also looks up each hit's best window
 *       ({@link Passages#lookup}), so no window vector is fetched.</li>
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
 * <p>{@code ext.sesa.field} names a {@code sesa_text} field: the search then uses that field for BM25 and its
 * {@code <field>_sesa_*} siblings for the dense and concept branches, the explanations and the model check, encodes the
 * query into the field's concept space, and reranks the field's text. The field must be a {@code sesa_text} field of
 * every target index ({@link SesaTextFieldLookup}), or the search is refused (400) naming it. Without {@code field} the
 * processor's configured fields are used, as before.
 *
 * Asynchronous only: the thread that runs the pipeline never waits for the inference server. One executor per
 * {@code sesa_query} processor, so one encoding cache per pipeline and node.
 */
public final class HybridSearchExecutor {

    private static final Logger LOG = LogManager.getLogger(HybridSearchExecutor.class);

    private final String type;
    private final BranchQueryFactory queries;
    private final int windowSize;
    private final int topKConcepts;
    private final TimeValue timeout;
    private final boolean strict;
    private final InferenceClient client;
    private final BranchSearcher searcher;
    private final TargetModelsLookup models;
    private final SesaTextFieldLookup sesaTextFields;
    private final ChunkFieldLookup chunkFields;
    private final QueryEncodingCache cache;
    private final boolean conceptIdf;
    private final ConceptStatsLookup conceptStats;

    /**
     * @param type         the processor's name, which its error messages start with
     * @param queries      builds the branch queries (text fields, target prefix, k-NN {@code k})
     * @param windowSize   hits each branch retrieves (at least {@code from + size})
     * @param topKConcepts query concepts asked from Encode (0: the server's default)
     * @param cacheSize    capacity of the query-encoding cache (0: off)
     * @param timeout      deadline of the Encode call; null: the client's default
     * @param strict       whether a hybrid search whose query cannot be encoded fails instead of degrading to BM25
     * @param searcher     runs the side branches and the backfill
     * @param models       what the search's target indices record about their models (checked against the encoding)
     * @param sesaTextFields the sesa_text fields of the search's target indices (for {@code ext.sesa.field})
     * @param chunkFields  whether the target indices hold {@code <prefix>_chunks}: the dense branch then scores each
     *                     document by its best window
     * @param conceptIdf   whether the concept branch weighs each query concept by its idf in the target indices
     * @param conceptStats reads those statistics ({@link SearchConceptStats} on a node)
     */
    public HybridSearchExecutor(
        String type,
        BranchQueryFactory queries,
        int windowSize,
        int topKConcepts,
        int cacheSize,
        TimeValue timeout,
        boolean strict,
        InferenceClient client,
        BranchSearcher searcher,
        TargetModelsLookup models,
        SesaTextFieldLookup sesaTextFields,
        ChunkFieldLookup chunkFields,
        boolean conceptIdf,
        ConceptStatsLookup conceptStats
    ) {
        this.chunkFields = Objects.requireNonNull(chunkFields);
        this.conceptIdf = conceptIdf;
        this.conceptStats = Objects.requireNonNull(conceptStats);
        this.type = Objects.requireNonNull(type);
        this.queries = Objects.requireNonNull(queries);
        this.windowSize = windowSize;
        this.topKConcepts = topKConcepts;
        this.timeout = timeout;
        this.strict = strict;
        this.client = Objects.requireNonNull(client);
        this.searcher = Objects.requireNonNull(searcher);
        this.models = Objects.requireNonNull(models);
        this.sesaTextFields = Objects.requireNonNull(sesaTextFields);
        this.cache = new QueryEncodingCache(cacheSize);
    }

    public BranchQueryFactory queries() {
        return queries;
    }

    public int windowSize() {
        return windowSize;
    }

    public int topKConcepts() {
        return topKConcepts;
    }

    public TimeValue timeout() {
        return timeout;
    }

    public boolean strict() {
        return strict;
    }

    public QueryEncodingCache cache() {
        return cache;
    }

    /**
     * One request on its way through the executor, and when it arrived ({@link System#nanoTime}), with the branch
     * queries and concept space of its fields: the processor's, or those of its {@code ext.sesa.field}.
     *
     * @param textFields the fields rerank reads the text from when they are the request's (its sesa_text field); null:
     *                   the rerank processor's own
     */
    private record Call(
        SearchRequest request,
        PipelineProcessingContext context,
        SesaSearchExt ext,
        long start,
        BranchQueryFactory queries,
        String conceptSpace,
        List<String> textFields,
        boolean holdsWindows
    ) {}

    /**
     * Turns {@code request}, which carries {@code ext} and passed validation, into the main branch's search and
     * answers {@code listener} with it; the side branches' outcome reaches {@code sesa_fuse} through the plan.
     * Failures go to the listener, never to the caller.
     */
    public void execute(SearchRequest request, PipelineProcessingContext context, SesaSearchExt ext, ActionListener<SearchRequest> listener) {
        Call call;
        try {
            call = call(request, context, ext);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        BranchQueryFactory queries = call.queries();
        if (ext.mode().needsEncoding() == false) {
            complete(call, null, false, -1, null, listener);
            return;
        }
        TargetModels target;
        try {
            target = models.targetModels(request, queries.names().prefix());
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        if (target.conflict() != null) {
            listener.onFailure(
                new OpenSearchStatusException(
                    "["
                        + type
                        + "] "
                        + target.conflict()
                        + " for target ["
                        + queries.names().prefix()
                        + "]: one query encoding cannot be compared with all of them; search them in separate requests, or re-index them with the same models",
                    RestStatus.BAD_REQUEST
                )
            );
            return;
        }
        String cacheText = cacheText(call);
        QueryEncoding cached = cache.get(target.expected(), cacheText);
        if (cached != null) {
            if (ext.mode().isHybrid()) {
                startWithCachedEncoding(call, cached, listener);
            } else {
                withConceptIdf(call, cached, enc -> complete(call, enc, true, -1, null, listener));
            }
            return;
        }
        EncodeRequest encode = EncodeRequest.newBuilder()
            .addTexts(ext.queryText())
            .setOptions(
                EncodeOptions.newBuilder().setKind(TextKind.TEXT_KIND_QUERY).setTopKConcepts(topKConcepts).setConceptSpace(call.conceptSpace())
            )
            .build();
        if (ext.mode().isHybrid()) {
            startBm25WhileEncoding(call, encode, target, listener);
            return;
        }
        client.encode(encode, timeout, new ActionListener<>() {
            @Override
            public void onResponse(EncodeResponse response) {
                QueryEncoding encoding;
                try {
                    encoding = checkedEncoding(response, target, queries);
                } catch (Exception e) {
                    listener.onFailure(e);
                    return;
                }
                cache.put(target.expected(), cacheText, encoding);
                Map<String, Object> serverTiming = SesaSearchPlan.serverTiming(response.hasTiming(), response.getTiming());
                long encodeNanos = System.nanoTime() - call.start();
                withConceptIdf(call, encoding, enc -> complete(call, enc, false, encodeNanos, serverTiming, listener));
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
    private void startBm25WhileEncoding(Call call, EncodeRequest encode, TargetModels target, ActionListener<SearchRequest> listener) {
        SearchRequest request = call.request();
        SesaSearchExt ext = call.ext();
        long start = call.start();
        SearchRequest template = new SearchRequest(request); // the side branches copy indices, routing, preference
        SearchSourceBuilder userSource = request.source();
        PendingResult<MultiSearchResponse> sides = new PendingResult<>();
        SearchRequest rewritten;
        try {
            rewritten = rewrite(call, null, false, sides);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        SesaSearchPlan plan = SesaSearchPlan.from(call.context());
        boolean failHard = ext.strict() != null ? ext.strict() : strict;
        client.encode(encode, timeout, new ActionListener<>() {
            @Override
            public void onResponse(EncodeResponse response) {
                plan.encodeTook(System.nanoTime() - start);
                plan.encodeServerTiming(SesaSearchPlan.serverTiming(response.hasTiming(), response.getTiming()));
                QueryEncoding encoding;
                try {
                    encoding = checkedEncoding(response, target, call.queries());
                } catch (Exception e) {
                    sides.onFailure(new QueryEncodingException(e.getMessage(), ExceptionsHelper.status(e), e));
                    return;
                }
                try {
                    cache.put(target.expected(), cacheText(call), encoding);
                    startSideBranches(call, template, userSource, encoding, plan, sides);
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
                    sides.onFailure(new QueryEncodingException("[" + type + "] the query encoding failed" + why + ": " + e.getMessage(), status, e));
                }
            }
        });
        listener.onResponse(rewritten);
    }

    /** Whether the call's concept branch is to be weighed by idf (and there is a concept to weigh). */
    private boolean needsConceptIdf(Call call, QueryEncoding encoding) {
        return conceptIdf
            && conceptStats != ConceptStatsLookup.NONE
            && encoding != null
            && encoding.concepts().isEmpty() == false
            && call.ext().mode().branches().contains(Branch.CONCEPTS);
    }

    /**
     * Hands {@code next} the encoding with its concepts' idf in the call's target indices ({@link QueryEncoding#withIdf})
     * when the mode searches concepts and {@code concept_idf} is on; otherwise, or when the statistics cannot be read
     * (the branch then scores with the weights alone, as before idf), the encoding as it is. Never fails.
     */
    private void withConceptIdf(Call call, QueryEncoding encoding, Consumer<QueryEncoding> next) {
        if (needsConceptIdf(call, encoding) == false) {
            next.accept(encoding);
            return;
        }
        List<String> keys = new ArrayList<>();
        for (QueryEncoding.QueryConcept c : encoding.conceptsByKey().values()) {
            if (BranchQueries.searchable(c)) {
                keys.add(c.key());
            }
        }
        if (keys.isEmpty()) {
            next.accept(encoding);
            return;
        }
        String field = call.queries().names().concepts();
        AtomicBoolean answered = new AtomicBoolean();
        ActionListener<ConceptIdf> once = new ActionListener<>() {
            @Override
            public void onResponse(ConceptIdf idf) {
                if (answered.compareAndSet(false, true)) {
                    next.accept(idf == null ? encoding : encoding.withIdf(idf));
                }
            }

            @Override
            public void onFailure(Exception e) {
                if (answered.compareAndSet(false, true)) {
                    LOG.warn("[{}] concept statistics of {} could not be read, concepts score without idf: {}", type, field, e.getMessage());
                    next.accept(encoding);
                }
            }
        };
        try {
            conceptStats.lookup(new SearchRequest(call.request()), field, keys, once);
        } catch (Exception e) {
            once.onFailure(e);
        }
    }

    /**
     * Hybrid with a cached encoding: the request goes on at once as the BM25 branch and the side branches start as
     * for a fresh encoding ({@link #startSideBranches}), so BM25 does not wait for the concept statistics either.
     */
    private void startWithCachedEncoding(Call call, QueryEncoding cached, ActionListener<SearchRequest> listener) {
        SearchRequest template = new SearchRequest(call.request());
        SearchSourceBuilder userSource = call.request().source();
        PendingResult<MultiSearchResponse> sides = new PendingResult<>();
        SearchRequest rewritten;
        try {
            rewritten = rewrite(call, cached, true, sides);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        SesaSearchPlan plan = SesaSearchPlan.from(call.context());
        try {
            startSideBranches(call, template, userSource, cached, plan, sides);
        } catch (Exception e) {
            sides.onFailure(e);
        }
        listener.onResponse(rewritten);
    }

    /**
     * Starts the side branches of a hybrid search whose encoding is there; completes {@code sides} with their answers
     * in the order the plan lists them. With {@code concept_idf}, the dense branch starts at once and the concept
     * branch when its statistics are read ({@link #withConceptIdf}), so the lookup costs the dense branch nothing.
     */
    private void startSideBranches(
        Call call,
        SearchRequest template,
        SearchSourceBuilder userSource,
        QueryEncoding encoding,
        SesaSearchPlan plan,
        PendingResult<MultiSearchResponse> sides
    ) {
        SesaSearchExt ext = call.ext();
        List<SearchExtBuilder> exts = BranchRequests.otherExts(userSource);
        Map<Branch, QueryBuilder> sideQueries = call.queries().build(ext, encoding, userSource.query());
        sideQueries.remove(Branch.BM25);
        AtomicLong clock = new AtomicLong(-1);
        plan.sideBranchesClock(clock);
        long started = System.nanoTime();
        if (needsConceptIdf(call, encoding) == false || sideQueries.containsKey(Branch.CONCEPTS) == false) {
            BranchRequests.SideSearch side = BranchRequests.sideSearch(template, userSource, ext.mode(), sideQueries, plan.window(), exts);
            plan.sideBranchesStarted(encoding, sideQueries, side.branches());
            if (side.branches().isEmpty()) {
                sides.onResponse(new MultiSearchResponse(new MultiSearchResponse.Item[0], 0L));
                return;
            }
            searcher.multiSearch(side.msearch(), timed(clock, sides));
            return;
        }
        Map<Branch, QueryBuilder> now = new EnumMap<>(sideQueries);
        now.remove(Branch.CONCEPTS);
        BranchRequests.SideSearch first = BranchRequests.sideSearch(template, userSource, ext.mode(), now, plan.window(), exts);
        PendingResult<MultiSearchResponse> firstAnswers = new PendingResult<>();
        if (first.branches().isEmpty()) {
            firstAnswers.onResponse(new MultiSearchResponse(new MultiSearchResponse.Item[0], 0L));
        } else {
            searcher.multiSearch(first.msearch(), firstAnswers);
        }
        withConceptIdf(call, encoding, weighed -> {
            try {
                // only the concept branch changes with idf: the dense one is not built (nor its vector written) again
                QueryBuilder concepts = call.queries().build(Branch.CONCEPTS, ext, weighed, userSource.query());
                Map<Branch, QueryBuilder> all = new EnumMap<>(now);
                Map<Branch, QueryBuilder> conceptBranch = new EnumMap<>(Branch.class);
                if (concepts != null) {
                    all.put(Branch.CONCEPTS, concepts);
                    conceptBranch.put(Branch.CONCEPTS, concepts);
                }
                BranchRequests.SideSearch second = BranchRequests.sideSearch(
                    template,
                    userSource,
                    ext.mode(),
                    conceptBranch,
                    plan.window(),
                    exts
                );
                List<Branch> branches = new ArrayList<>(first.branches());
                branches.addAll(second.branches());
                plan.sideBranchesStarted(weighed, all, branches);
                searcher.multiSearch(second.msearch(), ActionListener.wrap(conceptAnswers -> firstAnswers.whenDone(ActionListener.wrap(dense -> {
                    clock.set(System.nanoTime() - started);
                    sides.onResponse(concatenated(dense, conceptAnswers));
                }, sides::onFailure)), e -> {
                    clock.set(System.nanoTime() - started);
                    sides.onFailure(e);
                }));
            } catch (Exception e) {
                sides.onFailure(e);
            }
        });
    }

    /** One msearch answer of {@code a}'s items, then {@code b}'s (two msearches sent for one search). */
    private static MultiSearchResponse concatenated(MultiSearchResponse a, MultiSearchResponse b) {
        MultiSearchResponse.Item[] items = new MultiSearchResponse.Item[a.getResponses().length + b.getResponses().length];
        System.arraycopy(a.getResponses(), 0, items, 0, a.getResponses().length);
        System.arraycopy(b.getResponses(), 0, items, a.getResponses().length, b.getResponses().length);
        return new MultiSearchResponse(items, Math.max(a.getTook().millis(), b.getTook().millis()));
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

    /**
     * The call of one request: with the processor's fields, or, when {@code ext.sesa.field} names a sesa_text field, with
     * that field for BM25 and rerank, its {@code <field>_sesa_*} siblings and its concept space.
     *
     * @throws IllegalArgumentException (400) when the field is not a sesa_text field of every target index
     */
    private Call call(SearchRequest request, PipelineProcessingContext context, SesaSearchExt ext) {
        long start = System.nanoTime();
        String field = ext.field();
        boolean dense = ext.mode().branches().contains(Branch.DENSE);
        if (field == null) {
            boolean windows = chunkFields.mapsChunks(request, queries.names().chunks());
            return new Call(request, context, ext, start, queries.withChunks(dense && windows), "", null, windows);
        }
        String space = sesaTextFields.conceptSpace(request, field);
        BranchQueryFactory fieldQueries = queries.forSesaText(field);
        // a sesa_text field with chunking: scored by its best window, like the pipeline's fields
        boolean windows = chunkFields.mapsChunks(request, fieldQueries.names().chunks());
        return new Call(request, context, ext, start, fieldQueries.withChunks(dense && windows), space == null ? "" : space, List.of(field), windows);
    }

    /** The cache's text key: the query text, and the concept space it is encoded into when not the default one. */
    private static String cacheText(Call call) {
        return call.conceptSpace().isEmpty() ? call.ext().queryText() : call.conceptSpace() + "\0" + call.ext().queryText();
    }

    /**
     * The encoding of {@code response}, refused (400) when the server made it with other models than the target
     * indices record: what {@code sesa_encode} does with a document in that case, here before any vector is compared.
     */
    private QueryEncoding checkedEncoding(EncodeResponse response, TargetModels target, BranchQueryFactory queries) {
        IndexModels expected = target.expected();
        if (expected != null) {
            Map<String, String> actual = IndexModels.of(response);
            if (expected.matches(actual) == false) {
                String prefix = queries.names().prefix();
                throw new OpenSearchStatusException(
                    String.format(
                        Locale.ROOT,
                        "[%s] index [%s] was encoded with models %s for target [%s] (mapping _meta.%s.models.%s) but the inference server "
                            + "now encodes with %s: its query vectors cannot be compared with the documents' vectors; re-index into a new "
                            + "index with the server's models, or serve the recorded models again",
                        type,
                        target.indexList(),
                        expected,
                        prefix,
                        SesaConventions.get().indexMetaKey(),
                        prefix,
                        actual
                    ),
                    RestStatus.BAD_REQUEST
                );
            }
        }
        return QueryEncoding.from(response, type);
    }

    /**
     * Builds the plan and the rewritten request; failures go to the listener, never to the caller.
     *
     * @param serverTiming the server's timing of the Encode call ({@link SesaSearchPlan#serverTiming}); null: none
     */
    private void complete(
        Call call,
        QueryEncoding encoding,
        boolean cached,
        long encodeNanos,
        Map<String, Object> serverTiming,
        ActionListener<SearchRequest> listener
    ) {
        SearchRequest rewritten;
        try {
            rewritten = rewrite(call, encoding, cached, null);
            SesaSearchPlan plan = SesaSearchPlan.from(call.context());
            plan.encodeTook(encodeNanos);
            plan.encodeServerTiming(serverTiming);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        listener.onResponse(rewritten);
    }

    /**
     * Rewrites the call's request into the mode's main branch, starts the side branches unless the encoding is still
     * in flight ({@code deferredSides} non-null: its callback starts them), and leaves the plan in the call's context.
     */
    private SearchRequest rewrite(Call call, QueryEncoding encoding, boolean cached, PendingResult<MultiSearchResponse> deferredSides) {
        SearchRequest request = call.request();
        SesaSearchExt ext = call.ext();
        SearchSourceBuilder source = request.source();
        int from = Math.max(0, source.from());
        int size = source.size() < 0 ? 10 : source.size();
        int window = Math.max(windowSize, from + size);
        BranchQueryFactory queries = call.queries();
        Map<Branch, QueryBuilder> branchQueries = queries.build(ext, encoding, source.query());

        // _source: keep what the user asked for, but fetch what explanations and rerank read. A request that says
        // nothing about _source gets its hits without the window vectors (up to max_windows vectors a hit, which no
        // reader of a search response wants and which cost the fetch most of its time on long documents);
        // "_source": true asks for everything.
        FetchSourceContext userSource = SourceWidening.withoutWindowVectors(source.fetchSource(), call.holdsWindows(), queries.names());
        boolean defaulted = userSource != source.fetchSource();
        boolean leanMain = BranchRequests.fetchesOnlySource(source);
        // the best window of each hit (_sesa.passage, rerank): looked up when the page is fetched (Passages.lookup),
        // so no window vector is read from _source
        boolean passages = queries.chunks() && (ext.explain() || Boolean.FALSE.equals(ext.rerank()) == false);
        List<String> needed = SourceWidening.neededFields(ext, queries.names(), queries.textFields());
        if (passages) { // the text the window's span is cut from, and the coverage
            needed = new java.util.ArrayList<>(needed);
            if (ext.explain()) {
                needed.add(queries.names().coverage());
            }
            for (String f : Passages.withoutBoosts(queries.textFields())) {
                if (needed.contains(f) == false) {
                    needed.add(f);
                }
            }
        }
        FetchSourceContext fetch = SourceWidening.widen(userSource, needed);
        boolean augmented = fetch != userSource;

        List<SearchExtBuilder> otherExts = BranchRequests.otherExts(source);
        SearchRequest template = new SearchRequest(request); // before the rewrite: indices, routing, preference

        // The other branches: one msearch, started now so it runs alongside the main search; or, when the
        // encoding is still in flight (deferredSides), started by its callback.
        List<Branch> others = List.of();
        AtomicLong sideClock = new AtomicLong(-1);
        PendingResult<MultiSearchResponse> otherResults = deferredSides;
        if (deferredSides == null) {
            BranchRequests.SideSearch side = BranchRequests.sideSearch(template, source, ext.mode(), branchQueries, window, otherExts);
            others = side.branches();
            if (others.isEmpty() == false) {
                otherResults = new PendingResult<>();
                try {
                    searcher.multiSearch(side.msearch(), timed(sideClock, otherResults));
                } catch (Exception e) {
                    otherResults.onFailure(e);
                }
            }
        }

        Branch main = ext.mode().branches().get(0);
        SearchSourceBuilder mainSource = source.shallowCopy();
        mainSource.query(branchQueries.getOrDefault(main, new MatchNoneQueryBuilder()));
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
        if (leanMain) {
            BranchRequests.lean(mainSource);
        } else if (augmented || defaulted) {
            mainSource.fetchSource(fetch);
        }
        mainSource.seqNoAndPrimaryTerm(true);
        request.source(mainSource);

        SesaSearchPlan plan = new SesaSearchPlan(
            ext, queries.names(), encoding, cached, branchQueries, from, size, window, userSource, augmented, others, otherResults, call.start()
        );
        plan.sideBranchesClock(sideClock);
        plan.textFields(call.textFields());
        if (queries.chunks()) {
            plan.chunkTextFields(Passages.withoutBoosts(queries.textFields()));
        }
        String chunks = queries.names().chunks();
        // asked when the page is fetched: a hybrid search's encoding may arrive after this rewrite
        Supplier<QueryBuilder> lookup = passages
            ? () -> plan.encoding() == null ? null : Passages.lookup(chunks, plan.encoding().dense())
            : null;
        HitBackfill backfill = new ShardHitBackfill(searcher, template, source, fetch, otherExts, lookup);
        plan.backfill(backfill, leanMain, Boolean.TRUE.equals(source.seqNoAndPrimaryTerm()));
        call.context().setAttribute(SesaSearchPlan.CONTEXT_KEY, plan);
        return request;
    }
}
