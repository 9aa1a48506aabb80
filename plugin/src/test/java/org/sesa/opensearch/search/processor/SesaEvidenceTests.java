package org.sesa.opensearch.search.processor;

import org.junit.jupiter.api.Test;
import org.opensearch.OpenSearchParseException;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.cluster.ClusterState;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.search.SearchHit;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.inference.v1.DomainCheck;
import org.sesa.opensearch.index.IndexSesaMeta;
import org.sesa.opensearch.search.Branch;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.index.IndexMetaFixtures.evidenceMeta;
import static org.sesa.opensearch.index.IndexMetaFixtures.index;
import static org.sesa.opensearch.index.IndexMetaFixtures.state;
import static org.sesa.opensearch.search.SearchTestSupport.hit;
import static org.sesa.opensearch.search.SearchTestSupport.response;

/**
 * Issue 19: an extra signal earns its weight with evidence measured on the collection it is used on; without it,
 * it explains, it does not score. The index evidence record ({@code _meta.sesa.evidence.sesa}) read through
 * {@link IndexSesaMeta} from a cluster state, and what {@code sesa_fuse} and {@code sesa_rerank} make of it. The
 * windows and fused order (pipeline weights .4/.4/.2) are {@link SesaPipelineTestCase}'s: a .6, c .4, b .2, d 0.
 */
class SesaEvidenceTests extends SesaPipelineTestCase {

    static final String MEASURED = "{\"dataset\": \"scifact\", \"split\": \"train\", \"dev_queries\": 121, \"gain\": {\"ndcg@10\": 0.018}, \"p\": 0.01}";

    /** The test indices ("idx" holds every hit unless a test says otherwise) carry these records for prefix sesa. */
    void records(String... indexAndRecord) {
        var indices = new org.opensearch.cluster.metadata.IndexMetadata[indexAndRecord.length / 2];
        for (int i = 0; i < indexAndRecord.length; i += 2) {
            String record = indexAndRecord[i + 1];
            indices[i / 2] = index(indexAndRecord[i], record == null ? null : evidenceMeta("sesa", record));
        }
        ClusterState state = state(indices);
        evidence = new IndexSesaMeta(() -> state);
    }

    /** A record of fusion settings only: rrf, k 1, the dense branch alone. */
    static final String RRF_DENSE = record("{\"technique\": \"rrf\", \"weights\": {\"dense\": 1}, \"rank_constant\": 1}", null);

    static String record(String fusion, String rerank) {
        return "{\"version\": 1"
            + (fusion == null ? "" : ", \"fusion\": " + fusion)
            + (rerank == null ? "" : ", \"rerank\": " + rerank)
            + ", \"measured\": "
            + MEASURED
            + "}";
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> fusionInfo(SearchResponse r) {
        return (Map<String, Object>) ext(r).get("fusion");
    }

    static Map<String, Object> measured() {
        return XContentHelper.convertToMap(JsonXContent.jsonXContent, MEASURED, true);
    }

    /**
     * One search of {@code rerankExt} through {@code p}, with the rerank scores the reverse of the fused order and
     * "idx" carrying a record with this {@code rerank} section (null: no record at all).
     */
    SearchResponse rerankOn(String rerankSection, String rerankExt, SesaRerankProcessor p) throws Exception {
        reverseRerankScores();
        records("idx", rerankSection == null ? null : record(null, rerankSection));
        return rerankWith(rerankExt, p);
    }

    /** Rerank ran: the page's ids, the blend weight and where it came from. */
    static void assertReranked(SearchResponse out, List<String> ids, double weight, String weightSource) {
        assertEquals(ids, ids(out));
        Map<String, Object> info = rerankInfo(out);
        assertEquals(true, info.get("applied"));
        assertEquals(weight, info.get("weight"));
        assertEquals(weightSource, info.get("weight_source"));
    }

    /** Rerank was skipped by the evidence gate: the fused order, no Rerank call so far, the reason. */
    void assertSkipped(SearchResponse out, String skipped) {
        assertEquals(List.of("a", "c", "b", "d"), ids(out), "the fused order stands");
        assertEquals(0, service.reranking.calls.get(), "no Rerank call");
        Map<String, Object> info = rerankInfo(out);
        assertEquals(false, info.get("applied"));
        assertEquals(skipped, info.get("skipped"));
    }

    /** The page's ids and how {@code ext.sesa.fusion} says it was fused; returns that section for more checks. */
    static Map<String, Object> assertFused(
        SearchResponse out,
        List<String> ids,
        String technique,
        Map<String, Double> weights,
        int rankConstant,
        String weightsSource
    ) {
        assertEquals(ids, ids(out));
        Map<String, Object> fusion = fusionInfo(out);
        assertEquals(technique, fusion.get("technique"));
        assertEquals(weights, fusion.get("weights"));
        assertEquals(rankConstant, fusion.get("rank_constant"));
        assertEquals(weightsSource, fusion.get("weights_source"));
        return fusion;
    }

    SearchResponse fused(String extJson) throws Exception {
        return run(fuse(), bm25Window(), plan(extJson, new SearchSourceBuilder()));
    }

    // -- sesa_fuse: request > index evidence > pipeline, key by key ----------------------------------------------

    /** A search's {@code ext.sesa}, the page it fuses to, its top score and what {@code ext.sesa.fusion} says. */
    record FuseCase(String ext, List<String> ids, float top, String technique, Map<String, Double> weights, int k, String source) {}

    @Test
    void theSharedRecordsFusionSettingsScoreUnlessTheRequestSetsThemKeyByKey() throws Exception {
        records("idx", RRF_DENSE);
        List<FuseCase> cases = List.of(
            // the record alone: rrf k=1 over dense (a branch the record leaves out weighs 0): c 1/2, a 1/3, d 1/4, b 0
            new FuseCase("{\"query_text\": \"q\"}", List.of("c", "a", "d", "b"), 0.5f, "rrf", Map.of("bm25", 0.0, "dense", 1.0, "concepts", 0.0), 1, "index_evidence"),
            // the request's min_max and bm25 1 over the record's dense 1 and k: a (1 + .5) / 2, c 1 / 2, b and d 0
            new FuseCase(
                "{\"query_text\": \"q\", \"fusion\": {\"technique\": \"min_max\", \"weights\": {\"bm25\": 1}}}",
                List.of("a", "c", "b", "d"),
                0.75f,
                "min_max",
                Map.of("bm25", 1.0, "dense", 1.0, "concepts", 0.0),
                1,
                "request"
            )
        );
        for (FuseCase c : cases) {
            SearchResponse out = fused(c.ext());
            Map<String, Object> fusion = assertFused(out, c.ids(), c.technique(), c.weights(), c.k(), c.source());
            assertEquals(c.top(), out.getHits().getHits()[0].getScore(), 1e-6, c.ext());
            assertEquals(Map.of("index", "idx", "measured", measured()), fusion.get("evidence"), "which record, with what it measured");
        }
        SearchResponse out = fused("{\"query_text\": \"q\"}");
        assertEquals(0.6f, sesa(out.getHits().getHits()[3]).get("concepts"), "b's concept score still explains it");
    }

    @Test
    void withoutARecordThePipelineScores() throws Exception {
        records("idx", null);
        SearchResponse out = fused("{\"query_text\": \"q\"}");
        Map<String, Object> fusion = assertFused(out, List.of("a", "c", "b", "d"), "min_max", Map.of("bm25", 0.4, "dense", 0.4, "concepts", 0.2), 60, "pipeline");
        assertFalse(fusion.containsKey("evidence"));
        assertEquals("request", fusionInfo(fused("{\"query_text\": \"q\", \"fusion\": {\"weights\": {\"concepts\": 0}}}")).get("weights_source"));
    }

    @Test
    void candidatesFromIndicesThatDoNotShareOneRecordUseThePipeline() throws Exception {
        String r = record("{\"weights\": {\"dense\": 1}}", null);
        for (String other : new String[] { null, record("{\"weights\": {\"bm25\": 1}}", null), record("{\"weights\": {\"dense\": 1}}", "{\"enabled\": true}") }) {
            records("idx", r, "other", other);
            // b comes from another index in the BM25 branch
            SearchResponse mixed = run(fuse(), response(hit("a", 8f, A), hit("other", "b", 4f, B)), plan("{\"query_text\": \"q\"}", new SearchSourceBuilder()));
            Map<String, Object> fusion = fusionInfo(mixed);
            assertEquals("pipeline", fusion.get("weights_source"), String.valueOf(other));
            assertEquals("mixed", fusion.get("evidence"));
            assertEquals(0.4, ((Map<?, ?>) fusion.get("weights")).get("dense"));
        }
        // the same record on both: used, and both are named
        records("idx", r, "other", r);
        SearchResponse shared = run(fuse(), response(hit("a", 8f, A), hit("other", "b", 4f, B)), plan("{\"query_text\": \"q\"}", new SearchSourceBuilder()));
        assertEquals("index_evidence", fusionInfo(shared).get("weights_source"));
        assertEquals("idx,other", ((Map<?, ?>) fusionInfo(shared).get("evidence")).get("index"));
    }

    @Test
    void aMalformedRecordIsIgnoredAndReportedNeverFailingTheSearch() throws Exception {
        records("idx", "{\"version\": 1, \"fusion\": {\"technique\": \"borda\", \"weights\": {\"bm25\": -1}}}");
        SearchResponse out = fused("{\"query_text\": \"q\"}");
        assertEquals(List.of("a", "c", "b", "d"), ids(out), "the pipeline's fusion");
        Map<String, Object> fusion = fusionInfo(out);
        assertEquals("pipeline", fusion.get("weights_source"));
        assertEquals("invalid", fusion.get("evidence"));
        String reason = (String) fusion.get("evidence_reason");
        assertTrue(reason.startsWith("[idx] [_meta.sesa.evidence.sesa] [fusion.technique]"), reason);
        assertEquals(false, ext(out).get("degraded"));
    }

    @Test
    void theConceptDomainDropStillAppliesAfterTheRecord() throws Exception {
        records("idx", record("{\"weights\": {\"bm25\": 0.45, \"dense\": 0.45, \"concepts\": 0.1}}", null));
        conceptDomain(false);
        Map<String, Object> fusion = fusionInfo(fused("{\"query_text\": \"q\"}"));
        assertEquals("out_of_domain", fusion.get("concepts_dropped"));
        assertEquals(Map.of("bm25", 0.45, "dense", 0.45, "concepts", 0.0), fusion.get("weights"));
        assertEquals("index_evidence", fusion.get("weights_source"));
    }

    @Test
    void noCandidatesNothingToFuse() throws Exception {
        records("idx", record("{\"weights\": {\"dense\": 1}}", "{\"enabled\": true}"));
        searcher.answer = r -> org.sesa.opensearch.search.SearchTestSupport.msearch(response(), response());
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\", \"rerank\": true}", new SearchSourceBuilder());
        SearchResponse out = run(fuse(), response(), ctx);
        assertEquals(List.of(), ids(out));
        assertEquals("pipeline", fusionInfo(out).get("weights_source"));
        assertFalse(fusionInfo(out).containsKey("evidence"));
        assertEquals("no_evidence", rerankInfo(run(gatedRerank(), out, ctx)).get("skipped"));
        assertEquals(0, service.reranking.calls.get());
    }

    @Test
    @SuppressWarnings("unchecked")
    void theShippedPipelineFusesWithoutTheConceptScoreAndKeepsItsExplanations() throws Exception {
        Path file = Path.of("..", "schemas", "opensearch", "search-pipeline.json");
        Map<String, Object> pipeline = XContentHelper.convertToMap(JsonXContent.jsonXContent, Files.readString(file), true);
        Map<String, Object> fuseCfg = null;
        Map<String, Object> rerankCfg = null;
        for (Map<String, Object> p : (List<Map<String, Object>>) pipeline.get("response_processors")) {
            if (p.containsKey(SesaFuseProcessor.TYPE)) {
                fuseCfg = new HashMap<>((Map<String, Object>) p.get(SesaFuseProcessor.TYPE));
            } else {
                rerankCfg = new HashMap<>((Map<String, Object>) p.get(SesaRerankProcessor.TYPE));
            }
        }
        SesaFuseProcessor f = new SesaFuseProcessorFactory(evidence).create(Map.of(), null, null, false, fuseCfg, null);
        assertEquals(SesaFuseProcessorFactory.DEFAULT_TECHNIQUE, f.getSettings().technique(), "the shipped pipeline fuses with the default");
        assertEquals(0.0, f.getSettings().weights().get(Branch.CONCEPTS), "a 0 weight is accepted for a branch");
        assertTrue(new SesaRerankProcessorFactory(fake::client).create(Map.of(), null, null, false, rerankCfg, null).isSkipWithoutEvidence());

        PipelineProcessingContext ctx = plan("{\"query_text\": \"python sql\"}", new SearchSourceBuilder());
        SearchResponse out = run(f, bm25Window(), ctx);
        // z_score .5/.5/0: bm25 sd 2 -> a 2, b 0; dense sd sqrt(.02/3) -> c sqrt 6, a sqrt 1.5, d 0;
        // a (2 + sqrt 1.5) / 2, c sqrt 6 / 2, b and d 0
        assertEquals(List.of("a", "c", "b", "d"), ids(out));
        assertEquals((2 + Math.sqrt(1.5)) / 2, out.getHits().getHits()[0].getScore(), 1e-6);
        assertEquals(Math.sqrt(6) / 2, out.getHits().getHits()[1].getScore(), 1e-6);
        SearchHit b = out.getHits().getHits()[2];
        assertEquals(0.0, (Double) sesa(b).get("fused"), 1e-9, "the concept branch does not score");
        assertEquals(0.6f, sesa(b).get("concepts"), "but it ran and explains");
        assertFalse(((List<?>) sesa(out.getHits().getHits()[0]).get("shared_concepts")).isEmpty());
        assertEquals(true, ((Map<String, Map<String, Object>>) ext(out).get("branches")).get("concepts").get("queried"));
        assertEquals("pipeline", fusionInfo(out).get("weights_source"));
    }

    // -- sesa_rerank: the evidence gate ----------------------------------------------------------------------------

    @Test
    void withoutARecordRerankIsSkippedWithoutCallingTheServer() throws Exception {
        SearchResponse out = rerankOn(null, "{\"top_n\": 4}", gatedRerank("rerank_weight", 0.5));
        assertSkipped(out, "no_evidence");
        Map<String, Object> info = rerankInfo(out);
        assertEquals(4, info.get("top_n"));
        assertFalse(info.containsKey("evidence"));
        assertEquals(false, ext(out).get("degraded"), "skipping by design is not a degradation");
        for (SearchHit h : out.getHits().getHits()) {
            assertNull(sesa(h).get("rerank"));
            assertNull(sesa(h).get("degraded"));
        }
        assertEquals(0.6f, out.getHits().getHits()[0].getScore(), 1e-6, "the fused score");

        // by_default is gated the same way
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\"}", new SearchSourceBuilder());
        SearchResponse byDefault = run(gatedRerank("by_default", true), run(fuse(), bm25Window(), ctx), ctx);
        assertEquals("no_evidence", rerankInfo(byDefault).get("skipped"));
        assertEquals(0, service.reranking.calls.get());
    }

    @Test
    void aRecordThatEnablesRerankRerankWithItsWeight() throws Exception {
        SearchResponse out = rerankOn("{\"enabled\": true, \"weight\": 0.5}", "{\"top_n\": 4}", gatedRerank());
        // the .5 blend (see halfWeightBlendsTheNormalizedScores), not the pipeline's pure 1.0
        assertReranked(out, List.of("b", "a", "d", "c"), 0.5, "index_evidence");
        assertEquals(Map.of("index", "idx", "measured", measured()), rerankInfo(out).get("evidence"));
        assertEquals(1, service.reranking.calls.get());

        // the request's weight wins over the record's
        assertReranked(rerankWith("{\"top_n\": 4, \"weight\": 1}", gatedRerank()), List.of("d", "b", "c", "a"), 1.0, "request");
    }

    @Test
    void aRecordThatEnablesRerankWithoutAWeightLeavesThePipelinesWeight() throws Exception {
        SearchResponse out = rerankOn("{\"enabled\": true}", "{\"top_n\": 4}", gatedRerank("rerank_weight", 0.0));
        // weight 0: the fused order, but reranked (the scores are in the explanations)
        assertReranked(out, List.of("a", "c", "b", "d"), 0.0, "pipeline");
        assertEquals(0f, sesa(out.getHits().getHits()[0]).get("rerank"));
    }

    @Test
    void withoutEvidenceRerankRerankAsBefore() throws Exception {
        SesaRerankProcessor always = gatedRerank("without_evidence", "rerank", "rerank_weight", 0.5);
        assertFalse(always.isSkipWithoutEvidence());
        assertReranked(rerankOn(null, "{\"top_n\": 4}", always), List.of("b", "a", "d", "c"), 0.5, "pipeline");

        // per request, either way
        SearchResponse asked = rerankWith("{\"top_n\": 4, \"without_evidence\": \"rerank\"}", gatedRerank());
        assertReranked(asked, List.of("d", "b", "c", "a"), 1.0, "pipeline");
        SearchResponse skipped = rerankWith("{\"top_n\": 4, \"without_evidence\": \"skip\"}", always);
        assertEquals("no_evidence", rerankInfo(skipped).get("skipped"));
        assertEquals(2, service.reranking.calls.get());
    }

    @Test
    void aRecordAgainstRerankSkipsItUnlessTheRequestInsists() throws Exception {
        SearchResponse out = rerankOn("{\"enabled\": false, \"weight\": 0.5}", "{\"top_n\": 4}", gatedRerank());
        assertSkipped(out, "evidence_against");
        assertEquals(Map.of("index", "idx", "measured", measured()), rerankInfo(out).get("evidence"), "the record that said no");

        // the pipeline's weight, not the weight of a record against rerank
        assertReranked(rerankWith("{\"top_n\": 4, \"without_evidence\": \"rerank\"}", gatedRerank()), List.of("d", "b", "c", "a"), 1.0, "pipeline");
    }

    @Test
    void mixedOrInvalidRecordsAreNoEvidenceForRerank() throws Exception {
        SearchResponse out = rerankOn("{\"enabled\": \"sure\"}", "{\"top_n\": 4}", gatedRerank());
        assertSkipped(out, "no_evidence");
        assertEquals("invalid", rerankInfo(out).get("evidence"));
        assertTrue(((String) rerankInfo(out).get("evidence_reason")).contains("[rerank.enabled]"));
    }

    @Test
    void theDomainCheckStillAppliesAfterTheEvidenceGate() throws Exception {
        service.rerankDomain = DomainCheck.newBuilder().setSimilarity(0.1f).setThreshold(0.3f).setInDomain(false).setReference("scifact").build();
        Map<String, Object> info = rerankInfo(rerankOn("{\"enabled\": true, \"weight\": 0.5}", "{\"top_n\": 4}", gatedRerank()));
        assertEquals("out_of_domain", info.get("skipped"));
        assertEquals("index_evidence", info.get("weight_source"));
        assertEquals(1, service.reranking.calls.get(), "the evidence let it through to the server, whose domain check said no");
    }

    @Test
    void withoutEvidenceIsASkipByDefaultAndIsValidated() {
        assertTrue(gatedRerank().isSkipWithoutEvidence(), "skip is the default");
        assertFalse(gatedRerank("without_evidence", "rerank").isSkipWithoutEvidence());
        assertTrue(gatedRerank("without_evidence", "skip").isSkipWithoutEvidence());
        for (Object bad : new Object[] { "never", false, 1 }) {
            OpenSearchParseException e = assertThrows(OpenSearchParseException.class, () -> gatedRerank("without_evidence", bad));
            assertTrue(e.getMessage().startsWith("[without_evidence] must be \"skip\" or \"rerank\", got [" + bad + "]"), e.getMessage());
        }
    }
}
