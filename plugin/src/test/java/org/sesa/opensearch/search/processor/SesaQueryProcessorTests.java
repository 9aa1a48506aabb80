package org.sesa.opensearch.search.processor;

import org.junit.jupiter.api.Test;
import org.opensearch.ExceptionsHelper;
import org.opensearch.OpenSearchParseException;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.index.query.QueryBuilders;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.sort.SortOrder;
import org.sesa.opensearch.search.SesaQueryTestCase;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code sesa_query} as a processor: what its factory accepts, that a search without {@code ext.sesa} passes
 * through, and that a request the pipeline cannot honour is rejected before any model call. What it does with a
 * SESA search is in {@code HybridSearchExecutorTests}.
 */
class SesaQueryProcessorTests extends SesaQueryTestCase {

    @Test
    void aSearchWithoutExtPassesThroughUntouched() throws Exception {
        SearchSourceBuilder s = new SearchSourceBuilder().query(QueryBuilders.matchAllQuery()).size(3);
        Result r = run(processor(), request(s));
        assertSame(s, r.request().source());
        assertNull(r.plan());
        assertEquals(0, service.encoding.calls.get());
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
        assertEquals(0, service.encoding.calls.get(), "rejected before any model call");
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
        SesaQueryProcessor custom = processor("text_fields", List.of("title^2", "text"), "target_prefix", "emb", "knn_k", 7);
        assertEquals(List.of("title^2", "text"), custom.executor().queries().textFields(), "the options reach the branch queries");
        assertEquals("emb_dense", custom.executor().queries().names().dense());
        assertEquals(7, custom.getKnnK());
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
