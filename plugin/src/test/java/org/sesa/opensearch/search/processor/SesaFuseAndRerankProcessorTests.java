package org.sesa.opensearch.search.processor;

import io.grpc.Status;

import org.junit.jupiter.api.Test;
import org.opensearch.ExceptionsHelper;
import org.opensearch.OpenSearchParseException;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.common.io.stream.BytesStreamOutput;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.common.io.stream.NamedWriteableAwareStreamInput;
import org.opensearch.core.common.io.stream.NamedWriteableRegistry;
import org.opensearch.core.common.io.stream.StreamInput;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.core.xcontent.ToXContent;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.search.SearchExtBuilder;
import org.opensearch.search.SearchHit;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.inference.v1.DomainCheck;
import org.sesa.opensearch.FakeInference;
import org.sesa.opensearch.search.SearchTestSupport;
import org.sesa.opensearch.search.SesaSearchPlan;
import org.sesa.opensearch.search.ext.SesaResponseExt;
import org.sesa.opensearch.search.fusion.FusionTechnique;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.search.SearchTestSupport.hit;
import static org.sesa.opensearch.search.SearchTestSupport.msearch;
import static org.sesa.opensearch.search.SearchTestSupport.response;

/**
 * The whole pipeline on scripted branch results: sesa_query (real, against the fake server), sesa_fuse and
 * sesa_rerank. Windows: bm25 [a 8, b 4], dense [c .9, a .8, d .7], concepts [b .6, c .3]; the harness's min_max and
 * weights .4/.4/.2 give a .6, c .4, b .2, d 0.
 */
class SesaFuseAndRerankProcessorTests extends SesaPipelineTestCase {

    @Test
    void hybridMinMaxFusesTheThreeWindowsAndExplainsEachHit() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"python sql\"}", new SearchSourceBuilder().size(10));
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        assertEquals(List.of("a", "c", "b", "d"), ids(out));
        assertEquals(4, out.getHits().getTotalHits().value(), "the candidate set");
        SearchHit a = out.getHits().getHits()[0];
        assertEquals(0.6f, a.getScore(), 1e-5);
        Map<String, Object> ea = sesa(a);
        assertEquals(8f, ea.get("bm25"));
        assertEquals(0.8f, ea.get("dense"));
        assertNull(ea.get("concepts"), "a is not in the concepts window");
        assertEquals(0.6, (Double) ea.get("fused"), 1e-5);
        assertNull(ea.get("rerank"));
        assertEquals(
            List.of(
                Map.of("key", "c_py", "label", "Python", "query_weight", 0.8f, "doc_weight", 0.5, "contribution", 0.8f * 0.5),
                Map.of("key", "c_sql", "label", "SQL", "query_weight", 0.5f, "doc_weight", 0.4, "contribution", 0.5f * 0.4)
            ),
            ea.get("shared_concepts"),
            "only concepts both carry (not 'other'), strongest contribution first"
        );
        assertEquals(0.4, (Double) sesa(out.getHits().getHits()[1]).get("fused"), 1e-5);
        assertEquals(0.2, (Double) sesa(out.getHits().getHits()[2]).get("fused"), 1e-5);
        assertEquals(List.of(), sesa(out.getHits().getHits()[3]).get("shared_concepts"), "d has no concepts");
        assertEquals(0.6f, out.getHits().getMaxScore(), 1e-5);

        Map<String, Object> info = ext(out);
        assertEquals("hybrid", info.get("mode"));
        assertEquals(4, info.get("candidates"));
        assertEquals(false, info.get("degraded"));
        @SuppressWarnings("unchecked")
        Map<String, Map<String, Object>> branches = (Map<String, Map<String, Object>>) info.get("branches");
        assertEquals(3, branches.get("dense").get("returned"));
        assertEquals(0.7f, branches.get("dense").get("min_score"));
        assertEquals(8f, branches.get("bm25").get("max_score"));
    }

    @Test
    @SuppressWarnings("unchecked")
    void aQueryOutsideTheConceptHeadsDomainFusesWithoutTheConceptBranch() throws Exception {
        conceptDomain(false);
        assertTrue(fuse().isDropConceptsOutOfDomain(), "drop is the default");
        PipelineProcessingContext ctx = plan("{\"query_text\": \"python sql\"}", new SearchSourceBuilder().size(10));
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        // bm25 a 1, b 0; dense c 1, a .5, d 0; concepts weight 0: b loses its .2
        assertEquals(List.of("a", "c", "b", "d"), ids(out));
        assertEquals(0.0, (Double) sesa(out.getHits().getHits()[2]).get("fused"), 1e-6, "b had only the concept branch");
        assertEquals(0.6f, (Float) sesa(out.getHits().getHits()[2]).get("concepts"), 1e-6, "its raw concept score is still shown");
        assertFalse(((List<?>) sesa(out.getHits().getHits()[0]).get("shared_concepts")).isEmpty(), "explanations keep the shared concepts");
        Map<String, Object> fusion = (Map<String, Object>) ext(out).get("fusion");
        assertEquals("out_of_domain", fusion.get("concepts_dropped"));
        assertEquals(0.0, ((Map<String, Object>) fusion.get("weights")).get("concepts"));
        Map<String, Object> domain = (Map<String, Object>) fusion.get("concept_domain");
        assertEquals(false, domain.get("in_domain"));
        assertEquals(0.1, (Double) domain.get("similarity"), 1e-6);
        assertEquals("scifact", domain.get("reference"));

        // keep: the configured weights whatever the domain; a concepts-only request is never emptied
        SearchResponse kept = run(fuse("concepts_out_of_domain", "keep"), bm25Window(), plan("{\"query_text\": \"python sql\"}", new SearchSourceBuilder()));
        assertEquals(0.2, (Double) sesa(kept.getHits().getHits()[2]).get("fused"), 1e-5);
        assertNull(((Map<String, Object>) ext(kept).get("fusion")).get("concepts_dropped"));
        PipelineProcessingContext only = plan(
            "{\"query_text\": \"python sql\", \"fusion\": {\"weights\": {\"bm25\": 0, \"dense\": 0, \"concepts\": 1}}}",
            new SearchSourceBuilder()
        );
        SearchResponse alone = run(fuse(), bm25Window(), only);
        assertEquals("b", ids(alone).get(0), "ranked by the concept branch it asked for");
        assertEquals(1.0, (Double) sesa(alone.getHits().getHits()[0]).get("fused"), 1e-6);
        assertNull(((Map<String, Object>) ext(alone).get("fusion")).get("concepts_dropped"));
    }

    @Test
    @SuppressWarnings("unchecked")
    void anInDomainQueryFusesWithTheConceptBranch() throws Exception {
        conceptDomain(true);
        SearchResponse out = run(fuse(), bm25Window(), plan("{\"query_text\": \"python sql\"}", new SearchSourceBuilder()));
        assertEquals(0.2, (Double) sesa(out.getHits().getHits()[2]).get("fused"), 1e-5);
        Map<String, Object> fusion = (Map<String, Object>) ext(out).get("fusion");
        assertNull(fusion.get("concepts_dropped"));
        assertEquals(true, ((Map<String, Object>) fusion.get("concept_domain")).get("in_domain"));
        OpenSearchParseException e = assertThrows(OpenSearchParseException.class, () -> fuse("concepts_out_of_domain", "never"));
        assertTrue(e.getMessage().startsWith("[concepts_out_of_domain] must be \"drop\" or \"keep\", got [never]"), e.getMessage());
    }

    @Test
    void sideBranchesFetchIdsOnlyAndThePageFetchesItsOtherHitsInOneSearch() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"python sql\"}", new SearchSourceBuilder().size(10));
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        for (SearchRequest side : searcher.requests.get(0).requests()) {
            assertFalse(side.source().fetchSource().fetchSource(), "a side branch fetches no source");
            assertFalse(side.source().storedFields().fetchFields(), "nor any stored field (_id included)");
            assertTrue(side.source().seqNoAndPrimaryTerm(), "its hits are named by _seq_no");
            assertNull(side.source().highlighter());
            assertEquals(100, side.source().size(), "the whole window, for fusion");
        }
        assertEquals(List.of(List.of("a", "b", "c", "d")), backfilled, "the page, in one search (every branch was lean)");
        assertEquals(2, searcher.requests.size(), "side branches + one backfill");
        SearchRequest fetch = searcher.requests.get(1).requests().get(0);
        assertEquals(List.of("idx"), List.of(fetch.indices()), "the hits' index");
        assertEquals("_shards:0", fetch.preference(), "the hits' shard");
        assertEquals(4, fetch.source().size());
        assertEquals(org.opensearch.index.seqno.SequenceNumbers.UNASSIGNED_SEQ_NO, out.getHits().getHits()[0].getSeqNo(), "not asked for by the user");
        SearchHit c = out.getHits().getHits()[1];
        assertEquals("c", c.getId());
        assertEquals("C", c.getSourceAsMap().get("title"), "the fetched source replaces the lean hit");
        assertEquals(0.4f, c.getScore(), 1e-5, "the fused score, not the backfill search's");
        assertEquals(
            List.of(Map.of("key", "c_py", "label", "Python", "query_weight", 0.8f, "doc_weight", 0.2, "contribution", 0.8f * 0.2)),
            sesa(c).get("shared_concepts"),
            "explained from the fetched concept weights"
        );
        @SuppressWarnings("unchecked")
        Map<String, Object> timing = (Map<String, Object>) ext(out).get("timing");
        assertTrue(timing.get("backfill_ms") instanceof Double);
    }

    @Test
    void onlyThePartialHitsOfThePageOrTheRerankHeadAreFetched() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"python sql\", \"rerank\": {\"top_n\": 2}}", new SearchSourceBuilder().size(1));
        SearchResponse fused = run(fuse(), bm25Window(), ctx);
        assertEquals(List.of("a"), ids(fused));
        assertEquals(List.of(List.of("a")), backfilled, "the page only");
        SearchResponse out = run(rerank(), fused, ctx);
        assertEquals(List.of(List.of("a"), List.of("c")), backfilled, "the rerank head [a, c]: c was not fetched yet");
        assertEquals(List.of("A python\npython sql", "C\npython python"), service.reranking.requests.get(0).getPassagesList());
        assertEquals(List.of("c"), ids(out));
    }

    @Test
    void withHighlightsTheBm25BranchFetchesInPlaceAndOnlySideHitsAreFetchedAfterwards() throws Exception {
        SearchSourceBuilder source = new SearchSourceBuilder().highlighter(new org.opensearch.search.fetch.subphase.highlight.HighlightBuilder().field("text"));
        PipelineProcessingContext ctx = plan("{\"query_text\": \"python sql\"}", source);
        assertFalse(SesaSearchPlan.from(ctx).mainBranchLean());
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        assertEquals(List.of(List.of("c", "d")), backfilled, "a and b came with the BM25 branch");
        assertEquals(List.of("a", "c", "b", "d"), ids(out));
    }

    @Test
    void aDocumentChangedBeforeItsFetchLeavesThePageAndTheNextCandidateMovesUp() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\"}", new SearchSourceBuilder().size(3));
        vanishedIds.add("c"); // updated or deleted after the dense branch found it
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        assertEquals(List.of("a", "b", "d"), ids(out), "c is gone; d fills the page");
        assertEquals(List.of(List.of("a", "b", "c"), List.of("d")), backfilled, "a second fetch for the candidate behind");
        assertEquals(1, ext(out).get("vanished"));
        assertEquals(3, out.getHits().getTotalHits().value());
    }

    @Test
    void theUsersSeqNoRequestIsKept() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\"}", new SearchSourceBuilder().seqNoAndPrimaryTerm(true));
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        assertEquals(SearchTestSupport.seqNo("a"), out.getHits().getHits()[0].getSeqNo());
    }

    @Test
    void aFailedBackfillFailsTheSearchWithItsStatusOrDegradesRerank() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\"}", new SearchSourceBuilder());
        failBackfill = new org.opensearch.OpenSearchStatusException("shard gone", RestStatus.SERVICE_UNAVAILABLE);
        Exception e = failure(fuse(), bm25Window(), ctx);
        assertTrue(e.getMessage().contains("fetching the hits that only the side branches found failed: shard gone"), e.getMessage());
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(e));

        failBackfill = null;
        PipelineProcessingContext rr = plan("{\"query_text\": \"q2\", \"rerank\": true}", new SearchSourceBuilder().size(1));
        SearchResponse fused = run(fuse(), bm25Window(), rr);
        failBackfill = new org.opensearch.OpenSearchStatusException("shard gone", RestStatus.SERVICE_UNAVAILABLE);
        SearchResponse out = run(rerank(), fused, rr);
        assertEquals(true, ext(out).get("degraded"));
        assertTrue(((String) ext(out).get("degraded_reason")).contains("shard gone"));
        assertEquals(0, service.reranking.calls.get());
    }

    @Test
    void fromSizeRrfOverrideAndNoExplanations() throws Exception {
        PipelineProcessingContext ctx = plan(
            "{\"query_text\": \"q\", \"fusion\": {\"technique\": \"rrf\", \"rank_constant\": 1}, \"explain\": false}",
            new SearchSourceBuilder().from(1).size(2)
        );
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        // rrf, k=1, weights .4/.4/.2: a = .4/2 + .4/3, c = .4/2 + .2/3, b = .4/3 + .2/2, d = .4/4
        assertEquals(List.of("c", "b"), ids(out), "page [1, 3) of a, c, b, d");
        assertEquals(0.4 / 2 + 0.2 / 3, out.getHits().getHits()[0].getScore(), 1e-6);
        assertNull(out.getHits().getHits()[0].field("_sesa"));
        @SuppressWarnings("unchecked")
        Map<String, Object> fusion = (Map<String, Object>) ext(out).get("fusion");
        assertEquals(FusionTechnique.RRF.key(), fusion.get("technique"));
        assertEquals(1, fusion.get("rank_constant"));
    }

    @Test
    void zScoreFromThePipelineOrTheRequest() throws Exception {
        // z_score, weights .4/.4/.2 (ScoreFusionTests and tests/tooling/test_fusion_reference.py have the same case):
        // bm25 sd 2 -> a 2, b 0; dense sd sqrt(.02/3) -> c sqrt 6, a sqrt 1.5, d 0; concepts sd .15 -> b 2, c 0
        double[] expected = { 0.4 * 2 + 0.4 * Math.sqrt(1.5), 0.4 * Math.sqrt(6), 0.2 * 2, 0 };
        for (SearchResponse out : List.of(
            run(fuse("technique", "z_score"), bm25Window(), plan("{\"query_text\": \"q\"}", new SearchSourceBuilder())),
            run(fuse(), bm25Window(), plan("{\"query_text\": \"q\", \"fusion\": {\"technique\": \"z_score\"}}", new SearchSourceBuilder()))
        )) {
            assertEquals(List.of("a", "c", "b", "d"), ids(out));
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], (Double) sesa(out.getHits().getHits()[i]).get("fused"), 1e-6);
            }
            assertEquals((float) expected[0], out.getHits().getMaxScore(), 1e-6);
            @SuppressWarnings("unchecked")
            Map<String, Object> fusion = (Map<String, Object>) ext(out).get("fusion");
            assertEquals(FusionTechnique.Z_SCORE.key(), fusion.get("technique"));
        }
    }

    @Test
    void pipelineWeightsAndRequestWeights() throws Exception {
        SesaFuseProcessor dense = fuse("weights", Map.of("dense", 1));
        assertEquals(0.0, dense.getSettings().weights().get(org.sesa.opensearch.search.Branch.BM25), "unlisted pipeline weights are 0");
        SearchResponse out = run(dense, bm25Window(), plan("{\"query_text\": \"q\"}", new SearchSourceBuilder()));
        assertEquals(List.of("c", "a", "b", "d"), ids(out), "dense order; b and d tie at 0, b has the better rank (1 in concepts)");
        out = run(fuse(), bm25Window(), plan("{\"query_text\": \"q\", \"fusion\": {\"weights\": {\"concepts\": 10}}}", new SearchSourceBuilder()));
        assertEquals("b", ids(out).get(0), "the request's concepts weight dominates");
    }

    @Test
    void singleBranchModesKeepTheBranchRankingAndRawScores() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\", \"mode\": \"bm25\"}", new SearchSourceBuilder().size(5));
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        assertEquals(List.of("a", "b"), ids(out));
        assertEquals(8f, out.getHits().getHits()[0].getScore());
        Map<String, Object> e = sesa(out.getHits().getHits()[0]);
        assertEquals(8.0, (Double) e.get("fused"), 1e-6);
        assertNull(e.get("dense"));
        assertEquals(List.of(), e.get("shared_concepts"), "bm25 mode does not encode the query");
        assertEquals(List.of(List.of("a", "b")), backfilled, "no side branch; the lean page was fetched");
        assertEquals("A python", out.getHits().getHits()[0].getSourceAsMap().get("title"));
    }

    @Test
    void theUsersSourceFilterIsAppliedAfterExplaining() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\"}", new SearchSourceBuilder().fetchSource(new String[] { "title" }, null));
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        SearchHit a = out.getHits().getHits()[0];
        assertEquals(Map.of("title", "A python"), a.getSourceAsMap());
        assertEquals(2, ((List<?>) sesa(a).get("shared_concepts")).size(), "explained from the widened fetch");
    }

    @Test
    void aFailedSideBranchFailsTheSearchWithItsStatus() throws Exception {
        searcher.answer = r -> msearch(
            response(),
            new org.opensearch.OpenSearchStatusException("no [knn]", RestStatus.BAD_REQUEST)
        );
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\"}", new SearchSourceBuilder());
        Exception e = failure(fuse(), bm25Window(), ctx);
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(e));
        assertTrue(e.getMessage().contains("the concepts branch failed"), e.getMessage());
        searcher.failure = new org.opensearch.OpenSearchStatusException("overloaded", RestStatus.TOO_MANY_REQUESTS);
        Exception all = failure(fuse(), bm25Window(), plan("{\"query_text\": \"q\"}", new SearchSourceBuilder()));
        assertEquals(RestStatus.TOO_MANY_REQUESTS, ExceptionsHelper.status(all));
    }

    @Test
    void aHybridSearchWhoseQueryCannotBeEncodedIsBm25MarkedDegraded() throws Exception {
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("server down"), 1);
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\"}", new SearchSourceBuilder());
        SearchResponse out = run(fuse(), bm25Window(), ctx);
        assertEquals(List.of("a", "b"), ids(out));
        assertEquals(true, ext(out).get("degraded"));
        @SuppressWarnings("unchecked")
        Map<String, Object> timing = (Map<String, Object>) ext(out).get("timing");
        assertTrue(timing.get("encode_ms") instanceof Double, "the failed Encode call is timed too");
        assertNull(timing.get("side_branches_ms"), "no side branch ran");
        assertTrue((Double) timing.get("total_ms") >= 0);
        assertTrue(((String) ext(out).get("degraded_reason")).startsWith("query encoding failed, BM25 only: "));
        for (SearchHit h : out.getHits().getHits()) {
            assertTrue(((String) sesa(h).get("degraded")).contains("server down"));
            assertNull(sesa(h).get("dense"));
        }
        assertEquals(List.of(List.of("a", "b")), backfilled, "no side branch ran; the lean BM25 page was fetched");
        assertEquals(1, searcher.requests.size());

        // strict: the search fails with the server's status, not as a side-branch failure
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("server down"), 1);
        Exception e = failure(fuse(), bm25Window(), plan("{\"query_text\": \"q2\", \"strict\": true}", new SearchSourceBuilder()));
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(e));
        assertTrue(e.getMessage().startsWith("[sesa_query] the query encoding failed and strict is set"), e.getMessage());

        // a rerank that also fails keeps both reasons
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("server down"), 1);
        service.reranking.failNext(Status.UNAVAILABLE.withDescription("reranker down"), 1);
        PipelineProcessingContext both = plan("{\"query_text\": \"q3\", \"rerank\": true}", new SearchSourceBuilder());
        SearchResponse reranked = run(rerank(), run(fuse(), bm25Window(), both), both);
        String reason = (String) ext(reranked).get("degraded_reason");
        assertTrue(reason.startsWith("query encoding failed") && reason.contains("; rerank failed: "), reason);
    }

    @Test
    void searchesWithoutExtPassThroughEveryProcessor() throws Exception {
        SearchResponse in = bm25Window();
        PipelineProcessingContext ctx = new PipelineProcessingContext();
        assertSame(in, run(fuse(), in, ctx));
        assertSame(in, run(rerank("by_default", true), in, ctx));
        assertEquals(0, service.reranking.calls.get());
    }

    @Test
    void theResponseRendersAndSurvivesTransportSerialization() throws Exception {
        SearchResponse out = run(fuse(), bm25Window(), plan("{\"query_text\": \"q\"}", new SearchSourceBuilder()));
        XContentBuilder b = JsonXContent.contentBuilder();
        out.toXContent(b, ToXContent.EMPTY_PARAMS);
        Map<String, Object> json = XContentHelper.convertToMap(BytesReference.bytes(b), false, org.opensearch.common.xcontent.XContentType.JSON).v2();
        @SuppressWarnings("unchecked")
        Map<String, Object> first = ((List<Map<String, Object>>) ((Map<String, Object>) json.get("hits")).get("hits")).get(0);
        @SuppressWarnings("unchecked")
        Map<String, Object> explanation = ((List<Map<String, Object>>) ((Map<String, Object>) first.get("fields")).get("_sesa")).get(0);
        assertEquals(8.0, ((Number) explanation.get("bm25")).doubleValue(), 1e-6);
        assertTrue(explanation.containsKey("concepts") && explanation.get("concepts") == null, "null, not missing");
        @SuppressWarnings("unchecked")
        Map<String, Object> ext = (Map<String, Object>) ((Map<String, Object>) json.get("ext")).get("sesa");
        assertEquals("hybrid", ext.get("mode"));

        NamedWriteableRegistry registry = new NamedWriteableRegistry(
            List.of(new NamedWriteableRegistry.Entry(SearchExtBuilder.class, SesaResponseExt.NAME, SesaResponseExt::new))
        );
        try (BytesStreamOutput o = new BytesStreamOutput()) {
            out.writeTo(o);
            try (StreamInput in = new NamedWriteableAwareStreamInput(o.bytes().streamInput(), registry)) {
                SearchResponse back = new SearchResponse(in);
                assertEquals(ids(out), ids(back));
                assertEquals(ext(out), ext(back));
                assertEquals(sesa(out.getHits().getHits()[0]).get("fused"), sesa(back.getHits().getHits()[0]).get("fused"));
            }
        }
    }

    @Test
    void rerankReordersTheTopNAndKeepsTheFusedScores() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"python sql\", \"rerank\": {\"top_n\": 3}}", new SearchSourceBuilder());
        SearchResponse fused = run(fuse(), bm25Window(), ctx);
        SearchResponse out = run(rerank(), fused, ctx);
        assertEquals(List.of("c", "a", "b", "d"), ids(out), "c 3, a 2, b 0 by rerank; d (rank 4) keeps its place after the top 3");
        assertEquals(1, service.reranking.calls.get());
        assertEquals("python sql", service.reranking.requests.get(0).getQuery());
        assertEquals(List.of("A python\npython sql", "C\npython python", "B\nsql"), service.reranking.requests.get(0).getPassagesList());
        assertTrue(service.reranking.requests.get(0).getOptions().getChunkLongPassages());
        SearchHit c = out.getHits().getHits()[0];
        assertEquals(3f, c.getScore());
        assertEquals(3f, sesa(c).get("rerank"));
        assertEquals(0.4, (Double) sesa(c).get("fused"), 1e-5, "the pre-rerank score stays");
        assertNull(sesa(out.getHits().getHits()[3]).get("rerank"), "d was beyond top_n");
        @SuppressWarnings("unchecked")
        Map<String, Object> info = (Map<String, Object>) ext(out).get("rerank");
        assertEquals(true, info.get("applied"));
        assertEquals(3, info.get("reranked"));
        assertEquals("fake-reranker@3", info.get("model"));
        assertEquals(false, ext(out).get("degraded"));
    }

    @Test
    void rerankRespectsFromSizeAfterReordering() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\", \"rerank\": true}", new SearchSourceBuilder().size(1));
        SearchResponse fused = run(fuse(), bm25Window(), ctx);
        assertEquals(List.of("a"), ids(fused));
        SearchResponse out = run(rerank(), fused, ctx);
        assertEquals(List.of("c"), ids(out), "reranks the top_n of the full ranking, not just the page");
        assertEquals(4, service.reranking.requests.get(0).getPassagesCount(), "top_n 50 > 4 candidates");
    }

    @Test
    void aFailedRerankDegradesToTheFusedOrderVisibly() throws Exception {
        service.reranking.failNext(Status.UNAVAILABLE.withDescription("reranker down"), 1);
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\", \"rerank\": true}", new SearchSourceBuilder());
        SearchResponse out = run(rerank(), run(fuse(), bm25Window(), ctx), ctx);
        assertEquals(List.of("a", "c", "b", "d"), ids(out));
        for (SearchHit h : out.getHits().getHits()) {
            String reason = (String) sesa(h).get("degraded");
            assertTrue(reason.contains("UNAVAILABLE") && reason.contains("reranker down"), reason);
            assertNull(sesa(h).get("rerank"));
        }
        assertEquals(true, ext(out).get("degraded"));
        assertTrue(((String) ext(out).get("degraded_reason")).startsWith("rerank failed: "));
        assertEquals(0.6f, out.getHits().getHits()[0].getScore(), 1e-5);
    }

    @Test
    void aSlowRerankHitsItsDeadlineAndDegrades() throws Exception {
        service.reranking.hang();
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\", \"rerank\": {\"timeout\": \"200ms\"}}", new SearchSourceBuilder());
        long start = System.nanoTime();
        SearchResponse out = run(rerank("timeout", "30s"), run(fuse(), bm25Window(), ctx), ctx);
        assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) < 5_000, "the request's deadline wins");
        assertTrue(((String) ext(out).get("degraded_reason")).contains("DEADLINE_EXCEEDED"), (String) ext(out).get("degraded_reason"));
        assertEquals(List.of("a", "c", "b", "d"), ids(out));
    }

    @Test
    void strictFailsTheSearchInstead() throws Exception {
        service.reranking.failNext(Status.UNAVAILABLE.withDescription("reranker down"), 2);
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\", \"rerank\": {\"strict\": true}}", new SearchSourceBuilder());
        Exception e = failure(rerank(), run(fuse(), bm25Window(), ctx), ctx);
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(e));
        assertTrue(e.getMessage().contains("strict"), e.getMessage());
        PipelineProcessingContext ctx2 = plan("{\"query_text\": \"q\", \"rerank\": true}", new SearchSourceBuilder());
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(failure(rerank("strict", true), run(fuse(), bm25Window(), ctx2), ctx2)));
    }

    @Test
    void rerankRunsOnlyWhenAskedOrByDefault() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\"}", new SearchSourceBuilder());
        SearchResponse fused = run(fuse(), bm25Window(), ctx);
        assertSame(fused, run(rerank(), fused, ctx), "not asked, not by default");
        assertEquals(0, service.reranking.calls.get());
        assertEquals(List.of("c", "a", "b", "d"), ids(run(rerank("by_default", true), fused, ctx)));
        PipelineProcessingContext off = plan("{\"query_text\": \"q\", \"rerank\": false}", new SearchSourceBuilder());
        SearchResponse f2 = run(fuse(), bm25Window(), off);
        assertSame(f2, run(rerank("by_default", true), f2, off));
        assertEquals(1, service.reranking.calls.get());
    }

    @Test
    void passagesWithoutScoreOrTextStayBehindTheReranked() throws Exception {
        service.rerankScorer = (q, p) -> p.startsWith("A") ? Double.NaN : FakeInference.occurrences("python", p);
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\", \"rerank\": true}", new SearchSourceBuilder());
        SearchResponse out = run(rerank(), run(fuse(), bm25Window(), ctx), ctx);
        // c 2, b 0, d 0 (ties keep fused order: b before d), then a (item error)
        assertEquals(List.of("c", "b", "d", "a"), ids(out));
        @SuppressWarnings("unchecked")
        Map<String, Object> info = (Map<String, Object>) ext(out).get("rerank");
        assertEquals(1, info.get("item_errors"));
    }

    @Test
    void rerankNeedsFuseBeforeIt() throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\", \"rerank\": true}", new SearchSourceBuilder());
        Exception e = failure(rerank(), bm25Window(), ctx);
        assertTrue(e.getMessage().contains("must come after [sesa_fuse]"), e.getMessage());
        assertFalse(SesaSearchPlan.from(ctx).ranking() != null);
    }

    @Test
    void factoriesValidateTheirSettings() {
        SesaFuseProcessor f = defaultFuse();
        assertEquals(FusionTechnique.Z_SCORE, f.getSettings().technique(), "the default technique");
        assertEquals(FusionTechnique.Z_SCORE, SesaFuseProcessorFactory.DEFAULT_TECHNIQUE);
        assertEquals(FusionTechnique.MIN_MAX, fuse().getSettings().technique(), "the harness sets min_max");
        assertEquals(FusionTechnique.RRF, fuse("technique", "rrf").getSettings().technique());
        assertEquals(60, f.getSettings().rankConstant());
        assertEquals(0.05, f.getSettings().minRange());
        // the evidence-free default: BM25 and dense score, the concept branch explains
        assertEquals(0.5, f.getSettings().weights().get(org.sesa.opensearch.search.Branch.DENSE));
        assertEquals(0.0, f.getSettings().weights().get(org.sesa.opensearch.search.Branch.CONCEPTS));
        Object[][] badFuse = {
            { "technique", "sum" },
            { "weights", Map.of("bm25", -1) },
            { "weights", Map.of("sparse", 1) },
            { "weights", Map.of("bm25", 0) },
            { "weights", "1,2" },
            { "rank_constant", 0 },
            { "min_range", 2 },
            { "min_range", "x" } };
        for (Object[] kv : badFuse) {
            OpenSearchParseException e = assertThrows(OpenSearchParseException.class, () -> fuse(kv), () -> kv[0] + "=" + kv[1]);
            assertTrue(e.getMessage().startsWith("[" + kv[0] + "]"), e.getMessage());
        }
        OpenSearchParseException bad = assertThrows(OpenSearchParseException.class, () -> fuse("technique", "sum"));
        assertEquals("[technique] must be one of [min_max, z_score, rrf], got [sum]", bad.getMessage());
        SesaRerankProcessor r = rerank();
        assertEquals(List.of("title", "text"), r.getTextFields());
        assertEquals(50, r.getTopN());
        assertEquals("5s", r.getTimeout().getStringRep());
        assertFalse(r.isStrict());
        assertFalse(r.isByDefault());
        assertTrue(r.reranksBestWindow(), "default: the window the dense branch matched");
        assertFalse(rerank("passage", "first").reranksBestWindow());
        Object[][] badRerank = {
            { "text_fields", List.of() },
            { "text_fields", List.of("title^2") },
            { "top_n", 0 },
            { "top_n", 1001 },
            { "timeout", "-1" },
            { "strict", "maybe" },
            { "max_chunks", 257 },
            { "passage", "middle" } };
        for (Object[] kv : badRerank) {
            OpenSearchParseException e = assertThrows(OpenSearchParseException.class, () -> rerank(kv), () -> kv[0] + "=" + kv[1]);
            assertTrue(e.getMessage().startsWith("[" + kv[0] + "]"), e.getMessage());
        }
    }

    @Test
    void rerankWeightDefaultsToPureRerankAndIsValidated() {
        assertEquals(1.0, rerank().getRerankWeight(), "default: the cross-encoder score alone");
        assertEquals(0.4, rerank("rerank_weight", 0.4).getRerankWeight());
        assertEquals(0.0, rerank("rerank_weight", 0).getRerankWeight());
        assertEquals(0.25, rerank("rerank_weight", "0.25").getRerankWeight(), "a string that parses, like the other numbers");
        for (Object bad : new Object[] { -0.1, 1.5, "abc", Double.NaN, List.of(0.5) }) {
            OpenSearchParseException e = assertThrows(OpenSearchParseException.class, () -> rerank("rerank_weight", bad), () -> "rerank_weight=" + bad);
            assertTrue(e.getMessage().startsWith("[rerank_weight] must be a number between 0 and 1, got ["), e.getMessage());
            assertEquals(List.of(SesaRerankProcessor.TYPE), e.getMetadata("opensearch.processor_type"), "the error names the processor");
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void anOutOfDomainQueryKeepsTheFusedOrderUnlessTheRequestSaysRerank() throws Exception {
        reverseRerankScores();
        service.rerankDomain = DomainCheck.newBuilder().setSimilarity(0.12f).setThreshold(0.3f).setInDomain(false).setReference("scifact").build();
        SesaRerankProcessor p = rerank("rerank_weight", 0.7);
        assertTrue(p.isSkipOutOfDomain(), "skip is the default");
        SearchResponse out = rerankWith("{\"top_n\": 4}", p);
        assertTrue(service.reranking.requests.get(0).getOptions().getSkipOutOfDomain(), "the processor asks the server to skip");
        assertEquals(List.of("a", "c", "b", "d"), ids(out), "the fused order stands");
        for (SearchHit h : out.getHits().getHits()) {
            assertNull(sesa(h).get("rerank"), "no rerank score on a skipped query");
            assertNull(sesa(h).get("degraded"));
        }
        Map<String, Object> info = rerankInfo(out);
        assertEquals(false, info.get("applied"));
        assertEquals("out_of_domain", info.get("skipped"));
        Map<String, Object> domain = (Map<String, Object>) info.get("domain");
        assertEquals(false, domain.get("in_domain"));
        assertEquals(0.12, (Double) domain.get("similarity"), 1e-6);
        assertEquals(0.3, (Double) domain.get("threshold"), 1e-6);
        assertEquals(false, ext(out).get("degraded"), "skipping by design is not a degradation");

        // the request overrides: rerank anyway, and the explanation still says the query was out of domain
        SearchResponse anyway = rerankWith("{\"top_n\": 4, \"out_of_domain\": \"rerank\"}", p);
        assertFalse(service.reranking.requests.get(1).getOptions().getSkipOutOfDomain());
        assertEquals(List.of("d", "b", "c", "a"), ids(anyway), "reranked with the 0.7 blend");
        assertEquals(true, rerankInfo(anyway).get("applied"));
        assertEquals(false, ((Map<String, Object>) rerankInfo(anyway).get("domain")).get("in_domain"));

        // the pipeline can rerank everything; an in-domain query is reranked either way
        assertFalse(rerank("out_of_domain", "rerank").isSkipOutOfDomain());
        assertEquals(List.of("d", "b", "c", "a"), ids(rerankWith("{\"top_n\": 4}", rerank("rerank_weight", 0.7, "out_of_domain", "rerank"))));
        service.rerankDomain = DomainCheck.newBuilder().setSimilarity(0.5f).setThreshold(0.3f).setInDomain(true).build();
        SearchResponse inside = rerankWith("{\"top_n\": 4}", p);
        assertEquals(List.of("d", "b", "c", "a"), ids(inside));
        assertEquals(true, ((Map<String, Object>) rerankInfo(inside).get("domain")).get("in_domain"));
    }

    @Test
    void outOfDomainSettingIsValidated() {
        for (Object bad : new Object[] { "never", true, 1 }) {
            OpenSearchParseException e = assertThrows(OpenSearchParseException.class, () -> rerank("out_of_domain", bad), () -> "out_of_domain=" + bad);
            assertTrue(e.getMessage().startsWith("[out_of_domain] must be \"skip\" or \"rerank\", got ["), e.getMessage());
        }
    }

    @Test
    void weightOneIsThePureRerankOrderWithTheRawScores() throws Exception {
        reverseRerankScores();
        SearchResponse out = rerankWith("{\"top_n\": 4}", rerank());
        assertEquals(List.of("d", "b", "c", "a"), ids(out), "the rerank order, not the fused a, c, b, d");
        assertEquals(List.of(10f, 8f, 3f, 0f), boxed(scores(out)), "_score is the raw rerank score");
        for (SearchHit h : out.getHits().getHits()) {
            assertEquals(h.getScore(), sesa(h).get("rerank"));
            assertFalse(sesa(h).containsKey("rerank_blended"), "no blend, no blended score");
        }
        assertEquals(1.0, rerankInfo(out).get("weight"));
    }

    @Test
    void weightZeroIsTheFusedOrder() throws Exception {
        reverseRerankScores();
        SearchResponse out = rerankWith("{\"top_n\": 4}", rerank("rerank_weight", 0.0));
        assertEquals(List.of("a", "c", "b", "d"), ids(out));
        // min-max of the fused .6, .4, .2, 0 over the head
        assertArrayEquals(new float[] { 1f, 2f / 3, 1f / 3, 0f }, scores(out), 1e-5f);
        assertEquals(0f, sesa(out.getHits().getHits()[0]).get("rerank"), "the raw rerank score of a stays in the explanation");
        assertEquals(0.0, rerankInfo(out).get("weight"));
    }

    @Test
    void halfWeightBlendsTheNormalizedScores() throws Exception {
        reverseRerankScores();
        SearchResponse out = rerankWith("{\"top_n\": 4}", rerank("rerank_weight", 0.5));
        // rerank min-max over 0..10: a 0, b .8, c .3, d 1; fused min-max over 0...6: a 1, b 1/3, c 2/3, d 0
        double a = 0.5 * 0 + 0.5 * 1;
        double b = 0.5 * 0.8 + 0.5 * (1.0 / 3);
        double c = 0.5 * 0.3 + 0.5 * (2.0 / 3);
        double d = 0.5 * 1 + 0.5 * 0;
        assertEquals(0.5, a);
        assertEquals(0.5, d);
        assertEquals(List.of("b", "a", "d", "c"), ids(out), "b .567, then a and d tie at .5 (fused order: a first), then c .483");
        assertArrayEquals(new float[] { (float) b, (float) a, (float) d, (float) c }, scores(out), 1e-6f);
        Map<String, Object> eb = sesa(out.getHits().getHits()[0]);
        assertEquals(8f, eb.get("rerank"), "the raw cross-encoder score");
        assertEquals(b, (Double) eb.get("rerank_blended"), 1e-6);
        assertEquals(0.2, (Double) eb.get("fused"), 1e-5);
        assertEquals(c, (Double) sesa(out.getHits().getHits()[3]).get("rerank_blended"), 1e-6);
        assertEquals(0.5, rerankInfo(out).get("weight"));
        assertEquals(4, rerankInfo(out).get("reranked"));
    }

    @Test
    void theRequestsWeightBeatsThePipelines() throws Exception {
        reverseRerankScores();
        assertEquals(List.of("b", "a", "d", "c"), ids(rerankWith("{\"top_n\": 4, \"weight\": 0.5}", rerank())));
        SearchResponse pure = rerankWith("{\"top_n\": 4, \"weight\": 1}", rerank("rerank_weight", 0.5));
        assertEquals(List.of("d", "b", "c", "a"), ids(pure));
        assertEquals(10f, pure.getHits().getHits()[0].getScore());
        assertFalse(sesa(pure.getHits().getHits()[0]).containsKey("rerank_blended"));
        SearchResponse fused = rerankWith("{\"top_n\": 4, \"weight\": 0}", rerank("rerank_weight", 0.5));
        assertEquals(List.of("a", "c", "b", "d"), ids(fused));
        assertEquals(0.0, rerankInfo(fused).get("weight"));
    }

    @Test
    void aBlendOverTheScoredHeadOnlyLeavesTheOthersInPlace() throws Exception {
        // a has no score (item error); the head is a, c, b; d is beyond top_n
        service.rerankScorer = (q, p) -> switch (p.charAt(0)) {
            case 'A' -> Double.NaN;
            case 'B' -> 8;
            case 'C' -> 3;
            default -> 10;
        };
        SearchResponse out = rerankWith("{\"top_n\": 3}", rerank("rerank_weight", 0.5));
        // over c, b only: rerank c 0, b 1; fused (.4, .2) c 1, b 0: both .5, the tie keeps the fused order
        assertEquals(List.of("c", "b", "a", "d"), ids(out));
        assertArrayEquals(new float[] { 0.5f, 0.5f, 0.6f, 0f }, scores(out), 1e-5f, "a and d keep their fused scores");
        assertNull(sesa(out.getHits().getHits()[2]).get("rerank"));
        assertFalse(sesa(out.getHits().getHits()[2]).containsKey("rerank_blended"));
        assertFalse(sesa(out.getHits().getHits()[3]).containsKey("rerank_blended"));

        // all rerank scores equal: the rerank component is 0 for all and cannot decide; the fused order stays
        service.rerankScorer = (q, p) -> 7;
        SearchResponse flat = rerankWith("{\"top_n\": 4}", rerank("rerank_weight", 0.9));
        assertEquals(List.of("a", "c", "b", "d"), ids(flat));
        assertArrayEquals(new float[] { 0.1f, 0.1f * 2 / 3, 0.1f / 3, 0f }, scores(flat), 1e-5f);
    }

}
