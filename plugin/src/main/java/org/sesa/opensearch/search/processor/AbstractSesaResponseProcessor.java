package org.sesa.opensearch.search.processor;

import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.core.action.ActionListener;
import org.opensearch.search.pipeline.AbstractProcessor;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.opensearch.search.pipeline.SearchResponseProcessor;
import org.sesa.opensearch.search.SesaSearchPlan;
import org.sesa.opensearch.util.AsyncOnly;

import java.util.concurrent.Callable;
import java.util.function.Consumer;

/**
 * What {@code sesa_fuse} and {@code sesa_rerank} share: they run asynchronously only, and they act on the
 * {@link SesaSearchPlan} that {@code sesa_query} left in the pipeline context; a search without one (no
 * {@code ext.sesa}) passes through untouched.
 */
abstract class AbstractSesaResponseProcessor extends AbstractProcessor implements SearchResponseProcessor {

    private final String type;

    AbstractSesaResponseProcessor(String type, String tag, String description, boolean ignoreFailure) {
        super(tag, description, ignoreFailure);
        this.type = type;
    }

    @Override
    public final String getType() {
        return type;
    }

    @Override
    public final SearchResponse processResponse(SearchRequest request, SearchResponse response) {
        throw AsyncOnly.syncCall(type, "processResponseAsync");
    }

    @Override
    public final void processResponseAsync(
        SearchRequest request,
        SearchResponse response,
        PipelineProcessingContext context,
        ActionListener<SearchResponse> listener
    ) {
        SesaSearchPlan plan = SesaSearchPlan.from(context);
        if (plan == null) {
            listener.onResponse(response);
            return;
        }
        process(plan, response, listener);
    }

    /** Processes a search that carries {@code ext.sesa}; completes the listener exactly once. */
    abstract void process(SesaSearchPlan plan, SearchResponse response, ActionListener<SearchResponse> listener);

    /**
     * Completes the listener with what {@code body} builds; an exception thrown by {@code body} goes to
     * {@code onError} instead (outside the try, so a throwing listener is not called twice).
     */
    static void respond(ActionListener<SearchResponse> listener, Callable<SearchResponse> body, Consumer<Exception> onError) {
        SearchResponse out;
        try {
            out = body.call();
        } catch (Exception e) {
            onError.accept(e);
            return;
        }
        listener.onResponse(out);
    }
}
