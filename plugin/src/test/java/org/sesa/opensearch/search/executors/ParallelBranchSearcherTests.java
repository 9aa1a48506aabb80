package org.sesa.opensearch.search.executors;

import org.junit.jupiter.api.Test;
import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.core.action.ActionListener;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ParallelBranchSearcherTests {

    @Test
    void everyBranchStartsAtOnceAndAnswersInRequestOrderWithFailuresAsItems() throws Exception {
        List<ActionListener<SearchResponse>> started = new ArrayList<>();
        List<SearchRequest> seen = new ArrayList<>();
        ParallelBranchSearcher searcher = new ParallelBranchSearcher((r, l) -> {
            seen.add(r);
            started.add(l);
        });
        MultiSearchRequest m = new MultiSearchRequest();
        SearchRequest a = new SearchRequest("a");
        SearchRequest b = new SearchRequest("b");
        m.add(a);
        m.add(b);
        CompletableFuture<MultiSearchResponse> out = new CompletableFuture<>();
        searcher.multiSearch(m, ActionListener.wrap(out::complete, out::completeExceptionally));
        assertEquals(List.of(a, b), seen, "both branches start before either answers");
        RuntimeException boom = new RuntimeException("no knn");
        started.get(1).onFailure(boom); // the second answers first
        assertFalse(out.isDone());
        started.get(0).onResponse(null);
        MultiSearchResponse r = out.get(5, TimeUnit.SECONDS);
        assertEquals(2, r.getResponses().length);
        assertFalse(r.getResponses()[0].isFailure());
        assertTrue(r.getResponses()[1].isFailure());
        assertSame(boom, r.getResponses()[1].getFailure());
    }

    @Test
    void aSearchThatThrowsIsAFailedItemAndNoBranchesAnswerAtOnce() throws Exception {
        ParallelBranchSearcher throwing = new ParallelBranchSearcher((r, l) -> { throw new IllegalStateException("closed"); });
        MultiSearchRequest m = new MultiSearchRequest();
        m.add(new SearchRequest("a"));
        CompletableFuture<MultiSearchResponse> out = new CompletableFuture<>();
        throwing.multiSearch(m, ActionListener.wrap(out::complete, out::completeExceptionally));
        assertTrue(out.get(5, TimeUnit.SECONDS).getResponses()[0].isFailure());

        CompletableFuture<MultiSearchResponse> none = new CompletableFuture<>();
        new ParallelBranchSearcher((r, l) -> { throw new AssertionError("no search expected"); })
            .multiSearch(new MultiSearchRequest(), ActionListener.wrap(none::complete, none::completeExceptionally));
        assertEquals(0, none.get(5, TimeUnit.SECONDS).getResponses().length);
    }
}
