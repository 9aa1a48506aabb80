package org.sesa.opensearch.search.processor;

import io.grpc.Status;

import org.junit.jupiter.api.Test;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.action.ActionListener;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.inference.v1.DomainCheck;
import org.sesa.inference.v1.Timing;
import org.sesa.opensearch.search.ext.SesaSearchExt;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The inference server's own timing of the calls a search makes ({@code EncodeResponse.timing},
 * {@code RerankResponse.timing}): the query's Encode as {@code ext.sesa.timing.encode_server}, the Rerank as
 * {@code ext.sesa.rerank.rerank_server}, each absent when the call did not happen or the server sent no timing.
 */
class SesaServerTimingTests extends SesaPipelineTestCase {

    static final Timing ENCODE = Timing.newBuilder().setQueueMs(1.234f).setComputeMs(3.5f).setTokenizeMs(0.25f).setTotalMs(5f).setPriority("interactive").build();
    static final Map<String, Object> ENCODE_REPORTED = Map.of("queue_ms", 1.23, "compute_ms", 3.5, "tokenize_ms", 0.25, "total_ms", 5.0, "priority", "interactive");
    static final Timing RERANK = Timing.newBuilder().setQueueMs(0.5f).setComputeMs(40f).setTokenizeMs(2.25f).setTotalMs(43f).setPriority("interactive").build();
    static final Map<String, Object> RERANK_REPORTED = Map.of("queue_ms", 0.5, "compute_ms", 40.0, "tokenize_ms", 2.25, "total_ms", 43.0, "priority", "interactive");

    @SuppressWarnings("unchecked")
    static Map<String, Object> timing(SearchResponse r) {
        return (Map<String, Object>) ext(r).get("timing");
    }

    /** sesa_query through {@code p} (so its cache lives across calls), then sesa_fuse. */
    SearchResponse search(SesaQueryProcessor p, String extJson) throws Exception {
        SearchSourceBuilder source = new SearchSourceBuilder();
        source.ext(List.of(SesaSearchExt.fromMap(XContentHelper.convertToMap(JsonXContent.jsonXContent, extJson, true))));
        PipelineProcessingContext ctx = new PipelineProcessingContext();
        CompletableFuture<SearchRequest> f = new CompletableFuture<>();
        p.processRequestAsync(new SearchRequest(new String[] { "idx" }, source), ctx, ActionListener.wrap(f::complete, f::completeExceptionally));
        f.get(10, TimeUnit.SECONDS);
        return run(fuse(), bm25Window(), ctx);
    }

    @Test
    void theServersTimingOfTheQueryEncodeIsReportedNextToTheNodesOwn() throws Exception {
        service.encodeTiming = ENCODE;
        SesaQueryProcessor p = query();
        for (String mode : List.of("hybrid", "dense", "concepts")) { // hybrid encodes alongside BM25, the others first
            Map<String, Object> t = timing(search(p, "{\"query_text\": \"python " + mode + "\", \"mode\": \"" + mode + "\"}"));
            assertTrue(t.get("encode_ms") instanceof Double, mode);
            assertEquals(ENCODE_REPORTED, t.get("encode_server"), mode);
            assertEquals(List.of("encode_ms", "side_branches_ms", "backfill_ms", "total_ms", "encode_server"), List.copyOf(t.keySet()), mode);
        }
    }

    @Test
    void aCachedEncodingHasNoServerTiming() throws Exception {
        service.encodeTiming = ENCODE;
        SesaQueryProcessor p = query();
        assertEquals(ENCODE_REPORTED, timing(search(p, "{\"query_text\": \"python\"}")).get("encode_server"));
        SearchResponse cached = search(p, "{\"query_text\": \"python\"}");
        assertEquals(1, service.encoding.calls.get());
        assertEquals(true, ((Map<?, ?>) ext(cached).get("query")).get("cached"));
        assertFalse(timing(cached).containsKey("encode_server"), "the server did nothing for this search");
        assertEquals(null, timing(cached).get("encode_ms"));
    }

    @Test
    void noServerTimingWithoutAnEncodeCallOrFromAnOlderServer() throws Exception {
        service.encodeTiming = ENCODE;
        assertFalse(timing(search(query(), "{\"query_text\": \"python\", \"mode\": \"bm25\"}")).containsKey("encode_server"), "bm25: no call");
        service.encodeTiming = null; // a server older than the field
        Map<String, Object> t = timing(search(query(), "{\"query_text\": \"python\"}"));
        assertTrue(t.get("encode_ms") instanceof Double);
        assertFalse(t.containsKey("encode_server"));
    }

    @Test
    void aServerThatSaysNoPriorityReportsNull() throws Exception {
        service.encodeTiming = ENCODE.toBuilder().clearPriority().build();
        @SuppressWarnings("unchecked")
        Map<String, Object> server = (Map<String, Object>) timing(search(query(), "{\"query_text\": \"python\"}")).get("encode_server");
        assertTrue(server.containsKey("priority"));
        assertEquals(null, server.get("priority"));
        assertEquals(5.0, server.get("total_ms"));
    }

    @Test
    void theServersTimingOfTheRerankIsReportedInTheRerankSection() throws Exception {
        service.rerankTiming = RERANK;
        SearchResponse out = rerankWith("{\"top_n\": 4}", rerank());
        Map<String, Object> rerank = rerankInfo(out);
        assertEquals(true, rerank.get("applied"));
        assertTrue(rerank.get("took_ms") instanceof Long);
        assertEquals(RERANK_REPORTED, rerank.get("rerank_server"));
        assertFalse(timing(out).containsKey("rerank_server"), "reported once, with the rerank");

        service.rerankTiming = null; // an older server
        assertFalse(rerankInfo(rerankWith("{\"top_n\": 4}", rerank())).containsKey("rerank_server"));
    }

    @Test
    void aSkippedOutOfDomainQueryStillReportsTheCallsTiming() throws Exception {
        service.rerankTiming = RERANK;
        service.rerankDomain = DomainCheck.newBuilder().setSimilarity(0.1f).setThreshold(0.3f).setInDomain(false).setReference("scifact").build();
        Map<String, Object> rerank = rerankInfo(rerankWith("{\"top_n\": 4}", rerank()));
        assertEquals("out_of_domain", rerank.get("skipped"));
        assertEquals(RERANK_REPORTED, rerank.get("rerank_server"));
    }

    @Test
    void noRerankTimingWhenTheCallFailedOrWasNotMade() throws Exception {
        service.rerankTiming = RERANK;
        service.reranking.failNext(Status.UNAVAILABLE.withDescription("reranker down"), 1);
        Map<String, Object> failed = rerankInfo(rerankWith("{\"top_n\": 4}", rerank()));
        assertEquals(false, failed.get("applied"));
        assertFalse(failed.containsKey("rerank_server"));

        Map<String, Object> gated = rerankInfo(rerankWith("{\"top_n\": 4}", gatedRerank())); // no evidence: no call
        assertEquals("no_evidence", gated.get("skipped"));
        assertFalse(gated.containsKey("rerank_server"));
        assertEquals(1, service.reranking.calls.get());
    }
}
