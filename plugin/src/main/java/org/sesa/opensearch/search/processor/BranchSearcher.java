package org.sesa.opensearch.search.processor;

import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.core.action.ActionListener;

/** Runs the side branches and answers them together (see {@link ParallelBranchSearcher}); a stub in tests. */
@FunctionalInterface
public interface BranchSearcher {
    void multiSearch(MultiSearchRequest request, ActionListener<MultiSearchResponse> listener);
}
