package org.sesa.opensearch.search.processor;

import io.grpc.Status;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.opensearch.ExceptionsHelper;
import org.opensearch.OpenSearchParseException;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.index.query.BoolQueryBuilder;
import org.opensearch.index.query.MatchNoneQueryBuilder;
import org.opensearch.index.query.MultiMatchQueryBuilder;
import org.opensearch.index.query.QueryBuilders;
import org.opensearch.index.query.WrapperQueryBuilder;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.fetch.subphase.FetchSourceContext;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.opensearch.search.sort.SortOrder;
import org.sesa.inference.v1.Concept;
import org.sesa.inference.v1.Embedding;
import org.sesa.inference.v1.TextKind;
import org.sesa.opensearch.FakeInference;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.QueryEncodingException;
import org.sesa.opensearch.search.SearchTestSupport;
import org.sesa.opensearch.search.SearchTestSupport.RecordingSearcher;
import org.sesa.opensearch.search.SesaSearchPlan;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.query.BranchQueries;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SesaQueryProcessorTests {

    private FakeInference service;
    private FakeInference.InProcess server;
    private InferenceClient client;
    private RecordingSearcher searcher;

    @BeforeEach
    void setUp() throws Exception {
        service = new FakeInference();
        server = new FakeInference.InProcess(service);
        client = FakeInference.client(List.of(server.endpoint), FakeInference.IN_PROCESS_CHANNELS).maxRetries(() -> 0).build();
        searcher = new RecordingSearcher();
    }

    @AfterEach
    void tearDown() throws Exception {
        client.close();
        server.close();
    }

    SesaQueryProcessor processor(Object... kv) {
        Map<String, Object> cfg = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            cfg.put((String) kv[i], kv[i + 1]);
        }
        return new SesaQueryProcessorFactory(() -> client, searcher, SearchTestSupport.registry()).create(Map.of(), "t", null, false, cfg, null);
    }

    static SearchRequest request(SearchSourceBuilder source) {
        return new SearchRequest(new String[] { "sesa-test" }, source);
    }

    static SearchSourceBuilder source(SesaSearchExt ext) {
        return new SearchSourceBuilder().ext(List.of(ext));
    }

    static SesaSearchExt ext(String json) {
        return SesaSearchExt.fromMap(org.opensearch.common.xcontent.XContentHelper.convertToMap(
            org.opensearch.common.xcontent.json.JsonXContent.jsonXContent, json, true));
    }

    record Result(SearchRequest request, PipelineProcessingContext context) {
        SesaSearchPlan plan() {
            return SesaSearchPlan.from(context);
        }
    }

    /** Runs the processor and waits for the side branches too (a deferred hybrid search starts them later). */
    static Result run(SesaQueryProcessor p, SearchRequest r) throws Exception {
        PipelineProcessingContext ctx = new PipelineProcessingContext();
        CompletableFuture<SearchRequest> f = new CompletableFuture<>();
        p.processRequestAsync(r, ctx, org.opensearch.core.action.ActionListener.wrap(f::complete, f::completeExceptionally));
        Result result = new Result(f.get(10, TimeUnit.SECONDS), ctx);
        sides(result).exceptionally(e -> null).get(10, TimeUnit.SECONDS);
        return result;
    }

    static CompletableFuture<org.opensearch.action.search.MultiSearchResponse> sides(Result r) {
        CompletableFuture<org.opensearch.action.search.MultiSearchResponse> out = new CompletableFuture<>();
        if (r.plan() == null || r.plan().otherResults() == null) {
            out.complete(null);
        } else {
            r.plan().otherResults().whenDone(org.opensearch.core.action.ActionListener.wrap(out::complete, out::completeExceptionally));
        }
        return out;
    }

    /** The failure of the processor itself, or of the side branches it started. */
    static Exception failure(SesaQueryProcessor p, SearchRequest r) throws Exception {
        Result result;
        try {
            result = run(p, r);
        } catch (ExecutionException e) {
            return (Exception) e.getCause();
        }
        ExecutionException e = assertThrows(ExecutionException.class, () -> sides(result).get(10, TimeUnit.SECONDS));
        return (Exception) e.getCause();
    }

    static Map<String, Object> map(String json) {
        return org.opensearch.common.xcontent.XContentHelper.convertToMap(org.opensearch.common.xcontent.json.JsonXContent.jsonXContent, json, false);
    }

    static String wrapped(org.opensearch.index.query.QueryBuilder q) {
        return new String(assertInstanceOf(WrapperQueryBuilder.class, q).source(), StandardCharsets.UTF_8);
    }

    @Test
    void aSearchWithoutExtPassesThroughUntouched() throws Exception {
        SearchSourceBuilder s = new SearchSourceBuilder().query(QueryBuilders.matchAllQuery()).size(3);
        Result r = run(processor(), request(s));
        assertSame(s, r.request().source());
        assertNull(r.plan());
        assertEquals(0, service.calls.get());
        assertTrue(searcher.requests.isEmpty());
    }

    @Test
    void hybridRewritesIntoBm25AndStartsDenseAndConceptsAsOneMsearch() throws Exception {
        SearchSourceBuilder s = source(ext("{\"query_text\": \"python dev\"}")).query(QueryBuilders.termQuery("lang", "py")).from(2).size(5);
        Result r = run(processor("knn_k", 40, "window_size", 50), request(s));

        // one Encode call with the query kind and top_k_concepts
        assertEquals(1, service.calls.get());
        assertEquals(List.of("python dev"), service.requests.get(0).getTextsList());
        assertEquals(TextKind.TEXT_KIND_QUERY, service.requests.get(0).getOptions().getKind());
        assertEquals(32, service.requests.get(0).getOptions().getTopKConcepts());

        // main request: the BM25 branch over the window, the user's query as a filter, no sesa ext left
        SearchSourceBuilder main = r.request().source();
        assertEquals(0, main.from());
        assertEquals(50, main.size());
        assertTrue(main.ext().isEmpty());
        BoolQueryBuilder bool = assertInstanceOf(BoolQueryBuilder.class, main.query());
        MultiMatchQueryBuilder mm = assertInstanceOf(MultiMatchQueryBuilder.class, bool.must().get(0));
        assertEquals("python dev", mm.value());
        assertEquals(Map.of("title", 1.0f, "text", 1.0f), mm.fields());
        assertEquals(QueryBuilders.termQuery("lang", "py"), bool.filter().get(0));

        // side branches: one msearch, never through a search pipeline, no totals
        assertEquals(1, searcher.requests.size());
        assertEquals(2, searcher.requests.get(0).requests().size());
        for (SearchRequest side : searcher.requests.get(0).requests()) {
            assertEquals("_none", side.pipeline());
            assertArrayEquals(new String[] { "sesa-test" }, side.indices());
            assertEquals(50, side.source().size());
            assertEquals(0, side.source().from());
            assertTrue(side.source().ext().isEmpty());
        }
        String knn = wrapped(searcher.only(0).source().query());
        assertEquals(
            map("{\"knn\":{\"sesa_dense\":{\"vector\":[10.0,1.0],\"k\":40,\"filter\":{\"term\":{\"lang\":{\"value\":\"py\",\"boost\":1.0}}}}}}"),
            map(knn)
        );
        BoolQueryBuilder concepts = assertInstanceOf(BoolQueryBuilder.class, searcher.only(1).source().query());
        assertEquals("1", concepts.minimumShouldMatch());
        assertEquals(
            map("{\"rank_feature\":{\"field\":\"sesa_concepts.k_python_dev\",\"linear\":{},\"boost\":0.5}}"),
            map(wrapped(concepts.should().get(0)))
        );
        assertEquals(QueryBuilders.termQuery("lang", "py"), concepts.filter().get(0));

        SesaSearchPlan plan = r.plan();
        assertEquals(2, plan.from());
        assertEquals(5, plan.size());
        assertEquals(50, plan.window());
        assertEquals(List.of(Branch.DENSE, Branch.CONCEPTS), plan.otherBranches());
        assertTrue(plan.otherResults().isDone());
        assertFalse(plan.encodingCached());
        assertEquals("fake-dense@1", plan.encoding().denseModel());
    }

    @Test
    void branchQueryJson() {
        SesaQueryProcessor p = processor("text_fields", List.of("title^2", "text"), "target_prefix", "emb");
        service.embedder = text -> Embedding.newBuilder()
            .addDense(0.6f)
            .addDense(0.8f)
            .addConcepts(Concept.newBuilder().setKey("esco-a").setLabel("A").setWeight(0.7f))
            .addConcepts(Concept.newBuilder().setKey("bad.key").setLabel("B").setWeight(0.3f))
            .build();
        org.sesa.opensearch.search.query.QueryEncoding enc = org.sesa.opensearch.search.query.QueryEncoding.from(
            org.sesa.inference.v1.EncodeResponse.newBuilder().addEmbeddings(service.embedder.apply("q")).build(),
            "t"
        );
        Map<Branch, Map<String, Object>> json = p.branchJson(ext("{\"query_text\": \"q\"}"), enc, null);
        assertEquals("{\"multi_match\":{\"query\":\"q\",\"fields\":[\"title^2\",\"text\"]}}", BranchQueries.toJson(json.get(Branch.BM25)));
        assertEquals("{\"knn\":{\"emb_dense\":{\"vector\":[0.6,0.8],\"k\":100}}}", BranchQueries.toJson(json.get(Branch.DENSE)));
        assertEquals(
            "{\"bool\":{\"should\":[{\"rank_feature\":{\"field\":\"emb_concepts.esco-a\",\"linear\":{},\"boost\":0.7}}],\"minimum_should_match\":1}}",
            BranchQueries.toJson(json.get(Branch.CONCEPTS)),
            "a key with a dot cannot be a rank_features feature: skipped"
        );
        Map<String, Object> filter = Map.of("term", Map.of("lang", "py"));
        json = p.branchJson(ext("{\"query_text\": \"q\"}"), enc, filter);
        assertEquals(
            "{\"bool\":{\"must\":[{\"multi_match\":{\"query\":\"q\",\"fields\":[\"title^2\",\"text\"]}}],\"filter\":[{\"term\":{\"lang\":\"py\"}}]}}",
            BranchQueries.toJson(json.get(Branch.BM25))
        );
        assertEquals(
            "{\"knn\":{\"emb_dense\":{\"vector\":[0.6,0.8],\"k\":100,\"filter\":{\"term\":{\"lang\":\"py\"}}}}}",
            BranchQueries.toJson(json.get(Branch.DENSE))
        );
        assertTrue(BranchQueries.toJson(json.get(Branch.CONCEPTS)).endsWith("\"minimum_should_match\":1,\"filter\":[{\"term\":{\"lang\":\"py\"}}]}}"));
    }

    @Test
    void theSecondIdenticalQueryMakesNoEncodeCall() throws Exception {
        SesaQueryProcessor p = processor();
        run(p, request(source(ext("{\"query_text\": \"java\"}"))));
        Result second = run(p, request(source(ext("{\"query_text\": \"java\", \"mode\": \"dense\"}"))));
        assertEquals(1, service.calls.get(), "served from the cache");
        assertTrue(second.plan().encodingCached());
        assertEquals(1, p.cache().hits());
        run(p, request(source(ext("{\"query_text\": \"Java\"}"))));
        assertEquals(2, service.calls.get(), "the key is the exact text");
    }

    @Test
    void theCacheEvictsTheLeastRecentlyUsedAndSizeZeroTurnsItOff() throws Exception {
        SesaQueryProcessor p = processor("cache_size", 2);
        for (String q : List.of("a", "b", "a", "c", "a", "b")) {
            run(p, request(source(ext("{\"query_text\": \"" + q + "\"}"))));
        }
        // a, b: calls; a: hit; c: call (evicts b); a: hit; b: call
        assertEquals(4, service.calls.get());
        assertEquals(2, p.cache().size());
        SesaQueryProcessor off = processor("cache_size", 0);
        run(off, request(source(ext("{\"query_text\": \"z\"}"))));
        run(off, request(source(ext("{\"query_text\": \"z\"}"))));
        assertEquals(6, service.calls.get());
    }

    @Test
    void bm25ModeMakesNoEncodeCallAndNoSideSearch() throws Exception {
        Result r = run(processor(), request(source(ext("{\"query_text\": \"nurse\", \"mode\": \"bm25\"}")).size(3)));
        assertEquals(0, service.calls.get());
        assertTrue(searcher.requests.isEmpty());
        assertInstanceOf(MultiMatchQueryBuilder.class, r.request().source().query());
        assertEquals(100, r.request().source().size());
        assertNull(r.plan().encoding());
        assertNull(r.plan().otherResults());
    }

    @Test
    void singleModesPutTheirBranchIntoTheMainRequest() throws Exception {
        Result dense = run(processor(), request(source(ext("{\"query_text\": \"chef\", \"mode\": \"dense\"}"))));
        assertTrue(wrapped(dense.request().source().query()).startsWith("{\"knn\""));
        assertTrue(searcher.requests.isEmpty());
        service.embedder = t -> Embedding.newBuilder().addDense(1f).build(); // no concepts at all
        Result concepts = run(processor(), request(source(ext("{\"query_text\": \"other\", \"mode\": \"concepts\"}"))));
        assertInstanceOf(MatchNoneQueryBuilder.class, concepts.request().source().query(), "a query without concepts matches nothing");
        Result hybrid = run(processor(), request(source(ext("{\"query_text\": \"third\"}"))));
        assertEquals(List.of(Branch.DENSE), hybrid.plan().otherBranches(), "the empty concepts branch is not searched");
        assertFalse(hybrid.plan().queries().containsKey(Branch.CONCEPTS));
    }

    @Test
    void theWindowGrowsWithFromPlusSize() throws Exception {
        Result r = run(processor("window_size", 20), request(source(ext("{\"query_text\": \"q\", \"mode\": \"bm25\"}")).from(15).size(10)));
        assertEquals(25, r.plan().window());
        assertEquals(25, r.request().source().size());
        Result d = run(processor(), request(source(ext("{\"query_text\": \"q\", \"mode\": \"bm25\"}"))));
        assertEquals(0, d.plan().from());
        assertEquals(10, d.plan().size(), "default size");
    }

    @Test
    void encodeFailuresFailSingleBranchSearchesWithTheirStatus() throws Exception {
        service.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Exception e = failure(processor(), request(source(ext("{\"query_text\": \"q\", \"mode\": \"dense\"}"))));
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(e));
        Exception bad = failure(processor(), request(source(ext("{\"query_text\": \"bad\", \"mode\": \"concepts\"}"))));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(bad));
        assertTrue(bad.getMessage().contains("rejected the query text: INVALID_ARGUMENT"), bad.getMessage());
        assertTrue(searcher.requests.isEmpty());
    }

    @Test
    void hybridStartsBm25BeforeTheEncodingArrives() throws Exception {
        service.delay(300);
        PipelineProcessingContext ctx = new PipelineProcessingContext();
        CompletableFuture<SearchRequest> f = new CompletableFuture<>();
        processor().processRequestAsync(
            request(source(ext("{\"query_text\": \"slow\"}"))),
            ctx,
            org.opensearch.core.action.ActionListener.wrap(f::complete, f::completeExceptionally)
        );
        SearchRequest main = f.get(200, TimeUnit.MILLISECONDS); // well before the 300 ms Encode returns
        assertInstanceOf(MultiMatchQueryBuilder.class, main.source().query());
        Result r = new Result(main, ctx);
        assertFalse(r.plan().otherResults().isDone());
        assertTrue(searcher.requests.isEmpty());
        sides(r).get(10, TimeUnit.SECONDS);
        assertEquals(List.of(Branch.DENSE, Branch.CONCEPTS), r.plan().otherBranches());
        assertEquals(1, searcher.requests.size());
        assertEquals("fake-dense@1", r.plan().encoding().denseModel());
        assertTrue(r.plan().queries().keySet().containsAll(List.of(Branch.BM25, Branch.DENSE, Branch.CONCEPTS)));
        assertNull(r.plan().degradedReason());
    }

    @Test
    void hybridDegradesToBm25WhenTheServerIsDownUnlessStrict() throws Exception {
        service.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Result r = run(processor(), request(source(ext("{\"query_text\": \"q\"}"))));
        assertInstanceOf(MultiMatchQueryBuilder.class, r.request().source().query());
        assertEquals(0, sides(r).get().getResponses().length);
        assertTrue(r.plan().otherBranches().isEmpty());
        assertNull(r.plan().encoding());
        assertTrue(r.plan().degradedReason().startsWith("query encoding failed, BM25 only: "), r.plan().degradedReason());
        assertTrue(r.plan().degradedReason().contains("UNAVAILABLE"), r.plan().degradedReason());
        assertTrue(searcher.requests.isEmpty());

        // strict, from the request or from the processor: the search fails with the server's status
        service.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Exception e = failure(processor(), request(source(ext("{\"query_text\": \"q2\", \"strict\": true}"))));
        assertInstanceOf(QueryEncodingException.class, e);
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(e));
        assertTrue(e.getMessage().contains("strict is set"), e.getMessage());
        service.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Exception p = failure(processor("strict", true), request(source(ext("{\"query_text\": \"q3\"}"))));
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(p));
        // ...and a request may relax the processor's strict
        service.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Result relaxed = run(processor("strict", true), request(source(ext("{\"query_text\": \"q4\", \"strict\": false}"))));
        assertTrue(relaxed.plan().degradedReason() != null);

        // a text the server rejects is the user's mistake: never degraded
        Exception bad = failure(processor(), request(source(ext("{\"query_text\": \"bad\"}"))));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(bad));
        assertTrue(searcher.requests.isEmpty());
    }

    @Test
    void rejectsWhatFusionCannotHonour() throws Exception {
        SesaQueryProcessor p = processor();
        Exception sort = failure(p, request(source(ext("{\"query_text\": \"q\"}")).sort("lang", SortOrder.ASC)));
        assertTrue(sort.getMessage().contains("cannot be combined with [sort]"), sort.getMessage());
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(sort));
        SearchRequest scroll = request(source(ext("{\"query_text\": \"q\"}"))).scroll(TimeValue.timeValueMinutes(1));
        assertTrue(failure(p, scroll).getMessage().contains("[scroll]"));
        assertTrue(failure(p, request(source(ext("{\"query_text\": \"q\"}")).searchAfter(new Object[] { 1 }))).getMessage().contains("[search_after]"));
        assertTrue(failure(p, request(source(ext("{\"query_text\": \"q\"}")).minScore(1f))).getMessage().contains("[min_score]"));
        assertEquals(0, service.calls.get(), "rejected before any model call");
    }

    @Test
    void sourceFilteringIsWidenedOnlyWhenItHidesNeededFields() throws Exception {
        List<String> needed = List.of("sesa_concepts", "title", "text");
        assertNull(SesaQueryProcessor.widenSource(null, needed));
        FetchSourceContext all = new FetchSourceContext(true, new String[0], new String[] { "sesa_dense" });
        assertSame(all, SesaQueryProcessor.widenSource(all, needed));
        FetchSourceContext none = SesaQueryProcessor.widenSource(new FetchSourceContext(false), needed);
        assertArrayEquals(needed.toArray(), none.includes());
        FetchSourceContext some = SesaQueryProcessor.widenSource(new FetchSourceContext(true, new String[] { "title", "url" }, new String[0]), needed);
        assertEquals(List.of("title", "url", "sesa_concepts", "text"), List.of(some.includes()));
        FetchSourceContext hidden = SesaQueryProcessor.widenSource(new FetchSourceContext(true, new String[0], new String[] { "sesa_*", "x" }), needed);
        assertEquals(List.of("x"), List.of(hidden.excludes()));

        Result r = run(processor(), request(source(ext("{\"query_text\": \"q\", \"rerank\": false}")).fetchSource(false)));
        assertTrue(r.plan().sourceAugmented());
        assertFalse(r.request().source().fetchSource().fetchSource(), "hybrid BM25 branch: ids and scores only");
        assertTrue(r.plan().mainBranchLean());
        assertFalse(searcher.only(0).source().fetchSource().fetchSource(), "side branches fetch ids and scores only");
        CompletableFuture<Map<org.sesa.opensearch.search.DocKey, org.opensearch.search.SearchHit>> fetched = new CompletableFuture<>();
        r.plan().backfill().fetch(
            List.of(new org.sesa.opensearch.search.DocKey("idx", 2, 17, 1), new org.sesa.opensearch.search.DocKey("idx", 2, 9, 1),
                new org.sesa.opensearch.search.DocKey("idx", 0, 4, 1)),
            org.opensearch.core.action.ActionListener.wrap(fetched::complete, fetched::completeExceptionally)
        );
        fetched.get(10, TimeUnit.SECONDS);
        List<SearchRequest> backfill = searcher.requests.get(searcher.requests.size() - 1).requests();
        assertEquals(2, backfill.size(), "one search per shard");
        SearchRequest shard2 = backfill.get(0);
        assertEquals("_shards:2", shard2.preference());
        assertEquals(List.of("idx"), List.of(shard2.indices()));
        assertEquals(List.of("sesa_concepts"), List.of(shard2.source().fetchSource().includes()), "no rerank: only the concepts");
        assertEquals(2, shard2.source().size());
        assertTrue(shard2.source().seqNoAndPrimaryTerm());
        assertNull(shard2.source().explain(), "explain belongs to the branch searches");
        assertNull(shard2.source().postFilter());
        assertTrue(shard2.source().query().toString().contains("\"_seq_no\""), shard2.source().query().toString());
        assertEquals("_shards:0", backfill.get(1).preference());

        Result d = run(processor(), request(source(ext("{\"query_text\": \"q3\", \"mode\": \"dense\", \"rerank\": false}")).fetchSource(false)));
        assertTrue(d.plan().mainBranchLean(), "one branch too: its page is fetched afterwards");
        SearchSourceBuilder highlighted = source(ext("{\"query_text\": \"q4\", \"rerank\": false}")).fetchSource(false)
            .highlighter(new org.opensearch.search.fetch.subphase.highlight.HighlightBuilder().field("text"));
        Result h = run(processor(), request(highlighted));
        assertFalse(h.plan().mainBranchLean(), "highlights come from the BM25 search itself");
        assertEquals(List.of("sesa_concepts"), List.of(h.request().source().fetchSource().includes()), "fetched in place, widened");
        assertTrue(h.request().source().seqNoAndPrimaryTerm(), "named like the side branches' hits");
        assertNull(r.plan().visibleSource(Map.of("sesa_concepts", Map.of())));
        Result u = run(processor(), request(source(ext("{\"query_text\": \"q2\"}")).fetchSource(new String[] { "title" }, null)));
        assertEquals(Map.of("title", "T"), u.plan().visibleSource(Map.of("title", "T", "text", "x", "sesa_concepts", Map.of("a", 1))));
    }

    @Test
    void factoryValidatesItsSettings() {
        SesaQueryProcessor p = processor();
        assertEquals(List.of("title", "text"), p.getTextFields());
        assertEquals("sesa", p.getTargetPrefix());
        assertEquals(100, p.getWindowSize());
        assertEquals(100, p.getKnnK());
        assertEquals(32, p.getTopKConcepts());
        assertEquals(1024, p.cache().capacity());
        assertNull(p.getTimeout());
        assertEquals(TimeValue.timeValueMillis(1500), processor("timeout", "1500ms").getTimeout());
        Object[][] bad = {
            { "text_fields", "title" },
            { "text_fields", List.of() },
            { "text_fields", List.of("title^x") },
            { "text_fields", List.of("ti tle") },
            { "target_prefix", "_sesa" },
            { "target_prefix", "a b" },
            { "target_prefix", "a..b" },
            { "window_size", 0 },
            { "window_size", 10_001 },
            { "knn_k", 0 },
            { "top_k_concepts", -1 },
            { "top_k_concepts", 1025 },
            { "cache_size", -1 },
            { "timeout", "0s" },
            { "timeout", "soon" } };
        for (Object[] kv : bad) {
            OpenSearchParseException e = assertThrows(OpenSearchParseException.class, () -> processor(kv), () -> kv[0] + "=" + kv[1]);
            assertTrue(e.getMessage().startsWith("[" + kv[0] + "]"), e.getMessage());
        }
    }
}
