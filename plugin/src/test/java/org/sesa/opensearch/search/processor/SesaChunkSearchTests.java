package org.sesa.opensearch.search.processor;

import org.junit.jupiter.api.Test;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.index.query.BoolQueryBuilder;
import org.opensearch.index.query.DisMaxQueryBuilder;
import org.opensearch.index.query.NestedQueryBuilder;
import org.opensearch.search.fetch.StoredFieldsContext;
import org.opensearch.search.SearchHit;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.Passages;
import org.sesa.opensearch.search.SesaSearchPlan;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.search.SearchTestSupport.withLookup;
import static org.sesa.opensearch.search.SearchTestSupport.hit;
import static org.sesa.opensearch.search.SearchTestSupport.msearch;
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

    @Test
    void rerankWithPassageFirstScoresTheTextFromItsStart() throws Exception {
        chunkFields = (request, field) -> field.equals("sesa_chunks");
        PipelineProcessingContext ctx = denseSearch(", \"rerank\": true");
        SearchResponse fused = run(fuse(), response(hit("e", 0.9f, E), hit("c", 0.8f, C)), ctx);
        SesaRerankProcessor first = rerank("passage", "first");
        assertFalse(first.reranksBestWindow());
        run(first, fused, ctx);
        var sent = service.reranking.requests.get(0).getPassagesList();
        assertEquals("C\npython python", sent.get(1));
        assertTrue(sent.get(0).startsWith("E\n"), () -> "e's text from its start, not its best window: " + sent);
    }

    /** E as a source that does not hold the window vectors (what a lookup-named passage needs: the text). */
    static final String E_TEXT = "{\"title\":\"E\",\"text\":\"long python text\",\"sesa_coverage\":0.5}";

    /** The page fetches of the search so far; each answers with e, its best window [2, 6) named by the lookup. */
    private List<SearchRequest> fetchesAnsweredWithALookup() {
        List<SearchRequest> fetches = new ArrayList<>();
        searcher.answer = r -> {
            Object[] out = new Object[r.requests().size()];
            for (int i = 0; i < out.length; i++) {
                SearchRequest q = r.requests().get(i);
                fetches.add(q);
                boolean lean = q.source().fetchSource() != null && q.source().fetchSource().fetchSource() == false;
                boolean looksUp = q.source().query() instanceof BoolQueryBuilder b && b.should().size() == 1;
                var h = hit("e", 1f, lean ? null : E_TEXT);
                out[i] = response(looksUp ? withLookup(h, 2, 6, 0.8f) : h);
            }
            return msearch(out);
        };
        return fetches;
    }

    private static NestedQueryBuilder lookupOf(SearchRequest fetch) {
        BoolQueryBuilder b = assertInstanceOf(BoolQueryBuilder.class, fetch.source().query());
        assertEquals(1, b.should().size(), b.toString());
        return assertInstanceOf(NestedQueryBuilder.class, b.should().get(0));
    }

    @Test
    void aLeanSearchNamesThePassageFromThePageFetchsLookupWithoutReadingWindowVectors() throws Exception {
        chunkFields = (request, field) -> field.equals("sesa_chunks");
        List<SearchRequest> fetches = fetchesAnsweredWithALookup();
        PipelineProcessingContext ctx = plan(
            "{\"query_text\": \"python\", \"mode\": \"dense\", \"explain\": true, \"rerank\": false}",
            new SearchSourceBuilder().fetchSource(new String[] { "title" }, null)
        );
        SesaSearchPlan plan = SesaSearchPlan.from(ctx);
        assertTrue(plan.mainBranchLean());
        SearchResponse out = run(fuse(), response(hit("e", 0.9f, null)), ctx);
        assertEquals(1, fetches.size());
        NestedQueryBuilder lookup = lookupOf(fetches.get(0));
        assertEquals("sesa_chunks", lookup.path());
        List<String> includes = List.of(fetches.get(0).source().fetchSource().includes());
        assertTrue(includes.containsAll(List.of("title", "text", "sesa_coverage")), includes.toString());
        assertFalse(includes.stream().anyMatch(f -> f.startsWith("sesa_chunks")), "no window vector is fetched: " + includes);

        SearchHit e = out.getHits().getHits()[0];
        assertEquals(Map.of("start", 2, "end", 6, "text", "long"), sesa(e).get("passage"));
        assertEquals(0.5f, ((Number) sesa(e).get("coverage")).floatValue());
        assertNull(e.getInnerHits(), "the lookup's inner hits are not the user's");
        assertEquals(Map.of("title", "E"), e.getSourceAsMap(), "the user's _source filter");

        // rerank reads the same window
        PipelineProcessingContext rr = plan("{\"query_text\": \"python\", \"mode\": \"dense\", \"rerank\": true}", new SearchSourceBuilder());
        run(rerank(), run(fuse(), response(hit("e", 0.9f, null)), rr), rr);
        assertEquals(List.of("long"), service.reranking.requests.get(0).getPassagesList());
        assertNotNull(lookupOf(fetches.get(fetches.size() - 1)));
    }

    @Test
    void withoutExplainOrRerankNothingIsLookedUpAndTheSourceIsNotWidened() throws Exception {
        chunkFields = (request, field) -> field.equals("sesa_chunks");
        List<SearchRequest> fetches = fetchesAnsweredWithALookup();
        PipelineProcessingContext ctx = plan(
            "{\"query_text\": \"python\", \"mode\": \"dense\", \"explain\": false, \"rerank\": false}",
            new SearchSourceBuilder().fetchSource(new String[] { "title", "text" }, null)
        );
        SesaSearchPlan plan = SesaSearchPlan.from(ctx);
        assertInstanceOf(DisMaxQueryBuilder.class, plan.queries().get(Branch.DENSE), "still scored by the best window");
        assertFalse(plan.sourceAugmented(), "what the user fetches is all it reads");
        run(fuse(), response(hit("e", 0.9f, null)), ctx);
        SearchRequest fetch = fetches.get(fetches.size() - 1);
        BoolQueryBuilder b = assertInstanceOf(BoolQueryBuilder.class, fetch.source().query());
        assertTrue(b.should().isEmpty(), "no passage is named, none is looked up");
        assertEquals(List.of("title", "text"), List.of(fetch.source().fetchSource().includes()));
    }

    @Test
    void hitsTheMainBranchFetchedItselfGetTheirPassageFromALeanLookup() throws Exception {
        chunkFields = (request, field) -> field.equals("sesa_chunks");
        List<SearchRequest> fetches = fetchesAnsweredWithALookup();
        PipelineProcessingContext ctx = denseSearch(", \"rerank\": false");
        SesaSearchPlan plan = SesaSearchPlan.from(ctx);
        assertFalse(plan.mainBranchLean());
        // the main branch's hit carries its source, window vectors and all: the lookup still names the passage
        SearchResponse out = run(fuse(), response(hit("e", 0.9f, E)), ctx);
        assertEquals(1, fetches.size());
        SearchRequest lookup = fetches.get(0);
        assertFalse(lookup.source().fetchSource().fetchSource(), "a lookup only: no source");
        assertFalse(lookup.source().storedFields().fetchFields(), "no stored field either (" + StoredFieldsContext._NONE_ + ")");
        lookupOf(lookup);
        SearchHit e = out.getHits().getHits()[0];
        assertEquals(Map.of("start", 2, "end", 6, "text", "long"), sesa(e).get("passage"));
        assertNull(e.getInnerHits());
        assertTrue(e.getSourceAsMap().containsKey("sesa_chunks"), "the hit keeps the source its search fetched");
    }

    @Test
    void aRequestWithoutASourceSettingGetsItsHitsWithoutTheWindowVectors() throws Exception {
        chunkFields = (request, field) -> field.equals("sesa_chunks");
        denseSearch(", \"rerank\": false");
        var asked = mainRequest.source().fetchSource();
        assertNotNull(asked, "the main branch fetches a filtered source");
        assertTrue(asked.fetchSource());
        assertEquals(List.of("sesa_chunks.dense"), List.of(asked.excludes()), "the window vectors stay out; their spans come");
        assertEquals(0, asked.includes().length);

        // "_source": true (or any setting of the user's) is the user's, window vectors included
        chunkFields = (request, field) -> field.equals("sesa_chunks");
        plan("{\"query_text\": \"python\", \"mode\": \"dense\", \"rerank\": false}", new SearchSourceBuilder().version(true).fetchSource(true));
        assertEquals(0, mainRequest.source().fetchSource().excludes().length);
        // any mode: BM25 alone over an index with windows leaves them out too
        plan("{\"query_text\": \"python\", \"mode\": \"bm25\", \"rerank\": false}", new SearchSourceBuilder().version(true));
        assertEquals(List.of("sesa_chunks.dense"), List.of(mainRequest.source().fetchSource().excludes()));
        // an index without windows: nothing to leave out
        chunkFields = (request, field) -> false;
        plan("{\"query_text\": \"python\", \"mode\": \"dense\", \"rerank\": false}", new SearchSourceBuilder().version(true));
        assertNull(mainRequest.source().fetchSource());
    }
}
