package org.sesa.opensearch.search.processor;

import org.junit.jupiter.api.Test;
import org.opensearch.ExceptionsHelper;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.index.query.QueryBuilders;
import org.opensearch.search.builder.PointInTimeBuilder;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.collapse.CollapseBuilder;
import org.opensearch.search.fetch.subphase.highlight.HighlightBuilder;
import org.opensearch.search.rescore.QueryRescorerBuilder;
import org.opensearch.search.slice.SliceBuilder;
import org.opensearch.search.sort.SortBuilders;
import org.opensearch.search.sort.SortOrder;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SesaRequestValidatorTests {

    static SearchRequest request(SearchSourceBuilder source) {
        return new SearchRequest(new String[] { "sesa-test" }, source);
    }

    static String message(String what) {
        return "[ext.sesa] cannot be combined with [" + what + "]: the SESA pipeline orders the hits by fused score and pages with from/size";
    }

    @Test
    void whatFusionCanHonourPasses() {
        SesaRequestValidator.validate(request(new SearchSourceBuilder()));
        SesaRequestValidator.validate(
            request(
                new SearchSourceBuilder().query(QueryBuilders.termQuery("lang", "py"))
                    .from(20)
                    .size(5)
                    .sort(SortBuilders.scoreSort())
                    .postFilter(QueryBuilders.existsQuery("title"))
                    .highlighter(new HighlightBuilder().field("text"))
                    .timeout(TimeValue.timeValueSeconds(1))
                    .trackTotalHits(true)
            )
        );
    }

    @Test
    void eachPartThatFusionCannotHonourIsA400ThatNamesIt() {
        Map<String, UnaryOperator<SearchRequest>> cases = new LinkedHashMap<>();
        cases.put("scroll", r -> r.scroll(TimeValue.timeValueMinutes(1)));
        cases.put("pit", r -> { r.source().pointInTimeBuilder(new PointInTimeBuilder("pit-id")); return r; });
        cases.put("search_after", r -> { r.source().searchAfter(new Object[] { 1 }); return r; });
        cases.put("sort", r -> { r.source().sort("lang", SortOrder.ASC); return r; });
        cases.put("collapse", r -> { r.source().collapse(new CollapseBuilder("lang")); return r; });
        cases.put("rescore", r -> { r.source().addRescorer(new QueryRescorerBuilder(QueryBuilders.matchAllQuery())); return r; });
        cases.put("min_score", r -> { r.source().minScore(1f); return r; });
        cases.put("slice", r -> { r.source().slice(new SliceBuilder(0, 2)); return r; });
        for (Map.Entry<String, UnaryOperator<SearchRequest>> c : cases.entrySet()) {
            SearchRequest r = c.getValue().apply(request(new SearchSourceBuilder()));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SesaRequestValidator.validate(r), c.getKey());
            assertEquals(message(c.getKey()), e.getMessage());
            assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(e));
        }
    }

    @Test
    void aScoreSortNextToAnotherSortIsStillASortAndTheFirstProblemIsNamed() {
        SearchSourceBuilder s = new SearchSourceBuilder().sort(SortBuilders.scoreSort()).sort("lang", SortOrder.ASC);
        assertEquals(message("sort"), assertThrows(IllegalArgumentException.class, () -> SesaRequestValidator.validate(request(s))).getMessage());
        SearchRequest both = request(new SearchSourceBuilder().minScore(1f).searchAfter(new Object[] { 1 })).scroll(TimeValue.timeValueMinutes(1));
        assertEquals(message("scroll"), assertThrows(IllegalArgumentException.class, () -> SesaRequestValidator.validate(both)).getMessage());
    }
}
