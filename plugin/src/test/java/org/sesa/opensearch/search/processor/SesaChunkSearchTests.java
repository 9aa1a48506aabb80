package org.sesa.opensearch.search.processor;

import org.junit.jupiter.api.Test;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.index.query.DisMaxQueryBuilder;
import org.opensearch.search.SearchHit;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.SesaSearchPlan;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.search.SearchTestSupport.hit;
import static org.sesa.opensearch.search.SearchTestSupport.response;

/** Best-window search of indices that hold chunks: the dense query, {@code _sesa.passage} and {@code coverage}, rerank. */
class SesaChunkSearchTests extends SesaPipelineTestCase {

    /** Windows "E" [0, 1) along (0, 1) and "long" [2, 6) along (1, 0), the query's direction; title and text joined by "\n". */
    static final String E = "{\"title\":\"E\",\"text\":\"long python text\",\"sesa_chunks\":["
        + "{\"dense\":[0.0,1.0],\"start\":0,\"end\":1},{\"dense\":[1.0,0.0],\"start\":2,\"end\":6}],\"sesa_coverage\":0.5}";

    /** A not-lean request (version: true), so the dense branch's hits carry their source and need no backfill. */
    private PipelineProcessingContext denseSearch(String extra) throws Exception {
        return plan("{\"query_text\": \"python\", \"mode\": \"dense\", \"explain\": true" + extra + "}", new SearchSourceBuilder().version(true));
    }

    @Test
    void indicesWithChunksAreSearchedByTheBestWindowAndExplainIt() throws Exception {
        chunkFields = (request, field) -> field.equals("sesa_chunks");
        PipelineProcessingContext ctx = denseSearch(", \"rerank\": false");
        SesaSearchPlan plan = SesaSearchPlan.from(ctx);
        assertInstanceOf(DisMaxQueryBuilder.class, plan.queries().get(Branch.DENSE));
        assertEquals(List.of("title", "text"), plan.chunkTextFields());

        SearchResponse out = run(fuse(), response(hit("e", 0.9f, E), hit("c", 0.8f, C)), ctx);
        SearchHit[] hits = out.getHits().getHits();
        Map<String, Object> e = sesa(hits[0]);
        assertEquals(Map.of("start", 2, "end", 6, "text", "long"), e.get("passage"));
        assertEquals(0.5f, ((Number) e.get("coverage")).floatValue());
        Map<String, Object> c = sesa(hits[1]);
        assertTrue(c.containsKey("passage"));
        assertNull(c.get("passage"), "a document ingested without chunking has no passage");
        assertFalse(c.containsKey("coverage"));
    }

    @Test
    void withoutChunksNothingChanges() throws Exception {
        PipelineProcessingContext ctx = denseSearch(", \"rerank\": false");
        SesaSearchPlan plan = SesaSearchPlan.from(ctx);
        assertFalse(plan.queries().get(Branch.DENSE) instanceof DisMaxQueryBuilder);
        assertNull(plan.chunkTextFields());
        Map<String, Object> e = sesa(run(fuse(), response(hit("e", 0.9f, E)), ctx).getHits().getHits()[0]);
        assertFalse(e.containsKey("passage"));
        assertFalse(e.containsKey("coverage"));
    }

    @Test
    void rerankScoresTheBestWindow() throws Exception {
        chunkFields = (request, field) -> field.equals("sesa_chunks");
        PipelineProcessingContext ctx = denseSearch(", \"rerank\": true");
        SearchResponse fused = run(fuse(), response(hit("e", 0.9f, E), hit("c", 0.8f, C)), ctx);
        run(rerank(), fused, ctx);
        var sent = service.reranking.requests.get(0).getPassagesList();
        assertEquals(List.of("long", "C\npython python"), sent, "the best window of e; c has no chunks: its whole text");
    }
}
