package org.sesa.opensearch.search.executors;

import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.core.action.ActionListener;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;

/**
 * Runs each side branch as its own search, all at once, and answers with them as one {@link MultiSearchResponse}
 * (a failed branch is a failed item, as in msearch). Why not {@code _msearch}: this skips the multi-search
 * action's own bookkeeping and starts every branch from the calling thread without waiting for a slot.
 */
public final class ParallelBranchSearcher implements BranchSearcher {

    private final BiConsumer<SearchRequest, ActionListener<SearchResponse>> search;

    /** @param search one search, e.g. the node client's {@code search} */
    public ParallelBranchSearcher(BiConsumer<SearchRequest, ActionListener<SearchResponse>> search) {
        this.search = search;
    }

    @Override
    public void multiSearch(MultiSearchRequest request, ActionListener<MultiSearchResponse> listener) {
        List<SearchRequest> requests = request.requests();
        MultiSearchResponse.Item[] items = new MultiSearchResponse.Item[requests.size()];
        if (items.length == 0) {
            listener.onResponse(new MultiSearchResponse(items, 0L));
            return;
        }
        long started = System.nanoTime();
        AtomicInteger pending = new AtomicInteger(items.length);
        for (int i = 0; i < items.length; i++) {
            int slot = i;
            ActionListener<SearchResponse> one = new ActionListener<>() {
                @Override
                public void onResponse(SearchResponse r) {
                    done(new MultiSearchResponse.Item(r, null));
                }

                @Override
                public void onFailure(Exception e) {
                    done(new MultiSearchResponse.Item(null, e));
                }

                private void done(MultiSearchResponse.Item item) {
                    items[slot] = item;
                    if (pending.decrementAndGet() == 0) {
                        listener.onResponse(new MultiSearchResponse(items, (System.nanoTime() - started) / 1_000_000));
                    }
                }
            };
            try {
                search.accept(requests.get(i), one);
            } catch (Exception e) {
                one.onFailure(e);
            }
        }
    }
}
