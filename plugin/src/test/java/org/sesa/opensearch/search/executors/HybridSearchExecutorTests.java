package org.sesa.opensearch.search.executors;

import io.grpc.Status;

import org.junit.jupiter.api.Test;
import org.opensearch.ExceptionsHelper;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.index.query.BoolQueryBuilder;
import org.opensearch.index.query.MatchNoneQueryBuilder;
import org.opensearch.index.query.MultiMatchQueryBuilder;
import org.opensearch.index.query.QueryBuilders;
import org.opensearch.search.SearchHit;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.fetch.subphase.FetchSourceContext;
import org.opensearch.search.fetch.subphase.highlight.HighlightBuilder;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.inference.v1.Embedding;
import org.sesa.inference.v1.TextKind;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.DocKey;
import org.sesa.opensearch.search.QueryEncodingException;
import org.sesa.opensearch.search.SesaQueryTestCase;
import org.sesa.opensearch.search.SesaSearchPlan;
import org.sesa.opensearch.search.processor.SesaQueryProcessor;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hybrid orchestration behind {@code sesa_query}, driven through the processor's entry point against the fake
 * inference server and a recording branch searcher: Encode and its cache, the main-branch rewrite, the side branches,
 * degrading to BM25, the {@code _source} widening and the backfill searches.
 */
class HybridSearchExecutorTests extends SesaQueryTestCase {

    @Test
    void hybridRewritesIntoBm25AndStartsDenseAndConceptsAsOneMsearch() throws Exception {
        SearchSourceBuilder s = source(ext("{\"query_text\": \"python dev\"}")).query(QueryBuilders.termQuery("lang", "py")).from(2).size(5);
        Result r = run(processor("knn_k", 40, "window_size", 50), request(s));

        // one Encode call with the query kind and top_k_concepts
        assertEquals(1, service.encoding.calls.get());
        assertEquals(List.of("python dev"), service.encoding.requests.get(0).getTextsList());
        assertEquals(TextKind.TEXT_KIND_QUERY, service.encoding.requests.get(0).getOptions().getKind());
        assertEquals(32, service.encoding.requests.get(0).getOptions().getTopKConcepts());

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
    void theSecondIdenticalQueryMakesNoEncodeCall() throws Exception {
        SesaQueryProcessor p = processor();
        run(p, request(source(ext("{\"query_text\": \"java\"}"))));
        Result second = run(p, request(source(ext("{\"query_text\": \"java\", \"mode\": \"dense\"}"))));
        assertEquals(1, service.encoding.calls.get(), "served from the cache");
        assertTrue(second.plan().encodingCached());
        assertEquals(1, p.cache().hits());
        run(p, request(source(ext("{\"query_text\": \"Java\"}"))));
        assertEquals(2, service.encoding.calls.get(), "the key is the exact text");
    }

    @Test
    void theCacheEvictsTheLeastRecentlyUsedAndSizeZeroTurnsItOff() throws Exception {
        SesaQueryProcessor p = processor("cache_size", 2);
        for (String q : List.of("a", "b", "a", "c", "a", "b")) {
            run(p, request(source(ext("{\"query_text\": \"" + q + "\"}"))));
        }
        // a, b: calls; a: hit; c: call (evicts b); a: hit; b: call
        assertEquals(4, service.encoding.calls.get());
        assertEquals(2, p.cache().size());
        SesaQueryProcessor off = processor("cache_size", 0);
        run(off, request(source(ext("{\"query_text\": \"z\"}"))));
        run(off, request(source(ext("{\"query_text\": \"z\"}"))));
        assertEquals(6, service.encoding.calls.get());
    }

    @Test
    void bm25ModeMakesNoEncodeCallAndNoSideSearch() throws Exception {
        Result r = run(processor(), request(source(ext("{\"query_text\": \"nurse\", \"mode\": \"bm25\"}")).size(3)));
        assertEquals(0, service.encoding.calls.get());
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
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Exception e = failure(processor(), request(source(ext("{\"query_text\": \"q\", \"mode\": \"dense\"}"))));
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(e));
        Exception bad = failure(processor(), request(source(ext("{\"query_text\": \"bad\", \"mode\": \"concepts\"}"))));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(bad));
        assertTrue(bad.getMessage().contains("rejected the query text: INVALID_ARGUMENT"), bad.getMessage());
        assertTrue(searcher.requests.isEmpty());
    }

    @Test
    void hybridStartsBm25BeforeTheEncodingArrives() throws Exception {
        service.encoding.delay(300);
        PipelineProcessingContext ctx = new PipelineProcessingContext();
        CompletableFuture<SearchRequest> f = new CompletableFuture<>();
        processor().processRequestAsync(
            request(source(ext("{\"query_text\": \"slow\"}"))),
            ctx,
            ActionListener.wrap(f::complete, f::completeExceptionally)
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
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Result r = run(processor(), request(source(ext("{\"query_text\": \"q\"}"))));
        assertInstanceOf(MultiMatchQueryBuilder.class, r.request().source().query());
        assertEquals(0, sides(r).get().getResponses().length);
        assertTrue(r.plan().otherBranches().isEmpty());
        assertNull(r.plan().encoding());
        assertTrue(r.plan().degradedReason().startsWith("query encoding failed, BM25 only: "), r.plan().degradedReason());
        assertTrue(r.plan().degradedReason().contains("UNAVAILABLE"), r.plan().degradedReason());
        assertTrue(searcher.requests.isEmpty());

        // strict, from the request or from the processor: the search fails with the server's status
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Exception e = failure(processor(), request(source(ext("{\"query_text\": \"q2\", \"strict\": true}"))));
        assertInstanceOf(QueryEncodingException.class, e);
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(e));
        assertTrue(e.getMessage().contains("strict is set"), e.getMessage());
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Exception p = failure(processor("strict", true), request(source(ext("{\"query_text\": \"q3\"}"))));
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(p));
        // ...and a request may relax the processor's strict
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("down"), 1);
        Result relaxed = run(processor("strict", true), request(source(ext("{\"query_text\": \"q4\", \"strict\": false}"))));
        assertTrue(relaxed.plan().degradedReason() != null);

        // a text the server rejects is the user's mistake: never degraded
        Exception bad = failure(processor(), request(source(ext("{\"query_text\": \"bad\"}"))));
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(bad));
        assertTrue(searcher.requests.isEmpty());
    }

    @Test
    void sourceFilteringIsWidenedOnlyWhenItHidesNeededFields() throws Exception {
        List<String> needed = List.of("sesa_concepts", "title", "text");
        assertNull(SourceWidening.widen(null, needed));
        FetchSourceContext all = new FetchSourceContext(true, new String[0], new String[] { "sesa_dense" });
        assertSame(all, SourceWidening.widen(all, needed));
        FetchSourceContext none = SourceWidening.widen(new FetchSourceContext(false), needed);
        assertArrayEquals(needed.toArray(), none.includes());
        FetchSourceContext some = SourceWidening.widen(new FetchSourceContext(true, new String[] { "title", "url" }, new String[0]), needed);
        assertEquals(List.of("title", "url", "sesa_concepts", "text"), List.of(some.includes()));
        FetchSourceContext hidden = SourceWidening.widen(new FetchSourceContext(true, new String[0], new String[] { "sesa_*", "x" }), needed);
        assertEquals(List.of("x"), List.of(hidden.excludes()));

        Result r = run(processor(), request(source(ext("{\"query_text\": \"q\", \"rerank\": false}")).fetchSource(false)));
        assertTrue(r.plan().sourceAugmented());
        assertFalse(r.request().source().fetchSource().fetchSource(), "hybrid BM25 branch: ids and scores only");
        assertTrue(r.plan().mainBranchLean());
        assertFalse(searcher.only(0).source().fetchSource().fetchSource(), "side branches fetch ids and scores only");
        CompletableFuture<Map<DocKey, SearchHit>> fetched = new CompletableFuture<>();
        r.plan().backfill().fetch(
            List.of(new DocKey("idx", 2, 17, 1), new DocKey("idx", 2, 9, 1),
                new DocKey("idx", 0, 4, 1)),
            ActionListener.wrap(fetched::complete, fetched::completeExceptionally)
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
            .highlighter(new HighlightBuilder().field("text"));
        Result h = run(processor(), request(highlighted));
        assertFalse(h.plan().mainBranchLean(), "highlights come from the BM25 search itself");
        assertEquals(List.of("sesa_concepts"), List.of(h.request().source().fetchSource().includes()), "fetched in place, widened");
        assertTrue(h.request().source().seqNoAndPrimaryTerm(), "named like the side branches' hits");
        assertNull(r.plan().visibleSource(Map.of("sesa_concepts", Map.of())));
        Result u = run(processor(), request(source(ext("{\"query_text\": \"q2\"}")).fetchSource(new String[] { "title" }, null)));
        assertEquals(Map.of("title", "T"), u.plan().visibleSource(Map.of("title", "T", "text", "x", "sesa_concepts", Map.of("a", 1))));
    }
}
