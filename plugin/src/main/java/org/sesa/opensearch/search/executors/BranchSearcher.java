package org.sesa.opensearch.search.executors;

import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.core.action.ActionListener;

/**
 * The one way {@link HybridSearchExecutor} searches besides the user's own request: it runs a set of searches (the
 * side branches, or the page backfill) and answers them together, like an msearch. {@link ParallelBranchSearcher} on
 * a node; a stub in tests.
 */
@FunctionalInterface
public interface BranchSearcher {
    void multiSearch(MultiSearchRequest request, ActionListener<MultiSearchResponse> listener);
}
