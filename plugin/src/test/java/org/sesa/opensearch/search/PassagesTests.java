package org.sesa.opensearch.search;

import org.junit.jupiter.api.Test;
import org.opensearch.index.query.NestedQueryBuilder;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.search.SearchHit;
import org.opensearch.search.SearchHits;
import org.sesa.opensearch.search.query.BranchQueries;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PassagesTests {

    private static Map<String, Object> window(List<Float> dense, int start, int end) {
        return Map.of("dense", dense, "start", start, "end", end);
    }

    @Test
    void theNearestWindowIsCutFromTheJoinedText() {
        Map<String, Object> source = Map.of(
            "title", "Über",
            "text", "a 😀 emoji and more",
            "sesa_chunks", List.of(window(List.of(0f, 1f), 0, 4), window(List.of(0.9f, 0.1f), 5, 12))
        );
        Passages.Passage p = Passages.best(new float[] { 1f, 0f }, source, "sesa_chunks", List.of("title^2", "text"));
        assertEquals(5, p.start());
        assertEquals(12, p.end());
        // "Über\na 😀 emoji": code points 5..12 are "a 😀 emo" (the emoji is one code point, two chars)
        assertEquals("a 😀 emo", p.text());
        assertEquals(Map.of("start", 5, "end", 12, "text", "a 😀 emo"), Map.copyOf(p.toMap()));
    }

    @Test
    void noChunksNoPassageAndASpanOutsideTheTextHasNoText() {
        assertNull(Passages.best(new float[] { 1f, 0f }, Map.of("text", "x"), "sesa_chunks", List.of("text")));
        assertNull(Passages.best(new float[0], Map.of("sesa_chunks", List.of(window(List.of(1f, 0f), 0, 1))), "sesa_chunks", List.of("text")));
        assertNull(Passages.best(new float[] { 1f, 0f, 0f }, Map.of("sesa_chunks", List.of(window(List.of(1f, 0f), 0, 1))), "sesa_chunks", List.of("text")));
        Passages.Passage p = Passages.best(
            new float[] { 1f, 0f },
            Map.of("text", "short", "sesa_chunks", List.of(window(List.of(1f, 0f), 2, 50))),
            "sesa_chunks",
            List.of("text")
        );
        assertEquals(2, p.start());
        assertNull(p.text(), "the text fields do not hold the encoded text");
        assertEquals(0.25f, Passages.coverage(Map.of("sesa_coverage", 0.25), "sesa_coverage"));
        assertNull(Passages.coverage(Map.of(), "sesa_coverage"));
    }

    @Test
    @SuppressWarnings("unchecked")
    void theLookupScoresEveryWindowByTheExactCosineAndNamesTheBestAsAnInnerHitWithoutSource() {
        QueryBuilder q = Passages.lookup("sesa_chunks", new float[] { 1f, 0.5f });
        NestedQueryBuilder nested = assertInstanceOf(NestedQueryBuilder.class, q);
        assertEquals("sesa_chunks", nested.path());
        assertTrue(nested.ignoreUnmapped(), "an index without chunks answers nothing, it does not fail");
        assertEquals(Passages.INNER_HITS, nested.innerHit().getName());
        assertEquals(1, nested.innerHit().getSize());
        assertFalse(nested.innerHit().getFetchSourceContext().fetchSource(), "no window vector comes back");
        assertEquals(List.of("sesa_chunks.start", "sesa_chunks.end"), nested.innerHit().getDocValueFields().stream().map(f -> f.field).toList());
        Map<String, Object> json = (Map<String, Object>) BranchQueries.toMap(q).get("nested");
        assertEquals("max", json.get("score_mode"));
        Map<String, Object> scriptScore = (Map<String, Object>) ((Map<String, Object>) json.get("query")).get("script_score");
        Map<String, Object> script = (Map<String, Object>) scriptScore.get("script");
        assertEquals("knn", script.get("lang"));
        assertEquals("knn_score", script.get("source"));
        Map<String, Object> params = (Map<String, Object>) script.get("params");
        assertEquals("sesa_chunks.dense", params.get("field"));
        assertEquals("cosinesimil", params.get("space_type"));
        assertEquals(List.of(1.0, 0.5), ((List<Number>) params.get("query_value")).stream().map(Number::doubleValue).toList());
        // it parses back with the node's query parsers (the backfill sends it through the node client)
        assertInstanceOf(NestedQueryBuilder.class, BranchQueries.parse(BranchQueries.toMap(q), SearchTestSupport.registry()));

        assertNull(Passages.lookup("sesa_chunks", null));
        assertNull(Passages.lookup("sesa_chunks", new float[0]));
        assertNull(Passages.lookup("sesa_chunks", new float[] { 0f, 0f }), "a zero vector has no cosine");
    }

    @Test
    void aLookedUpWindowIsTakenOffTheHitAndCutFromItsText() {
        SearchHit hit = SearchTestSupport.withLookup(SearchTestSupport.hit("e", 1f, "{\"title\":\"E\",\"text\":\"long python text\"}"), 2, 6, 0.9f);
        Candidate partial = new Candidate(DocKey.of(hit), SearchTestSupport.hit("e", 1f, null), new Float[3], new int[3], 1.0, true);
        assertSame(Passages.Lookup.NOT_LOOKED_UP, partial.passageLookup());
        Candidate c = partial.withFetchedHit(hit, "sesa_chunks");
        assertNull(hit.getInnerHits(), "the user did not ask for the lookup's inner hits");
        assertEquals(new Passages.Lookup(true, new Passages.Span(2, 6, 0.9f)), c.passageLookup());
        Passages.Passage p = Passages.of(c, new float[] { 1f, 0f }, "sesa_chunks", List.of("title", "text"));
        assertEquals(Map.of("start", 2, "end", 6, "text", "long"), Map.copyOf(p.toMap()));
        assertNull(Passages.of(c, null, "sesa_chunks", List.of("title", "text")), "no query vector, no passage");

        SearchHit none = SearchTestSupport.withLookup(SearchTestSupport.hit("f", 1f, "{\"text\":\"x\"}"), null, null, 0f);
        Candidate noChunks = partial.withFetchedHit(none, "sesa_chunks");
        assertEquals(new Passages.Lookup(true, null), noChunks.passageLookup());
        assertNull(Passages.of(noChunks, new float[] { 1f, 0f }, "sesa_chunks", List.of("text")), "looked up: no chunks");

        // a hit fetched without the lookup: the window vectors in its source, as before
        Candidate fromSource = partial.withFetchedHit(SearchTestSupport.hit("g", 1f, "{\"text\":\"abc\",\"sesa_chunks\":"
            + "[{\"dense\":[0.0,1.0],\"start\":0,\"end\":1},{\"dense\":[1.0,0.0],\"start\":1,\"end\":3}]}"), "sesa_chunks");
        assertSame(Passages.Lookup.NOT_LOOKED_UP, fromSource.passageLookup());
        assertEquals("bc", Passages.of(fromSource, new float[] { 1f, 0f }, "sesa_chunks", List.of("text")).text());
        SearchHit other = SearchTestSupport.hit("h", 1f, null);
        other.setInnerHits(new HashMap<>(Map.of("user", SearchHits.empty())));
        assertSame(Passages.Lookup.NOT_LOOKED_UP, Passages.lookedUp(other, "sesa_chunks"));
        assertEquals(List.of("user"), List.copyOf(other.getInnerHits().keySet()), "inner hits of others stay");
    }
}
