package org.sesa.opensearch.search.processor;

import org.opensearch.action.search.SearchRequest;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.action.ActionListener;
import org.opensearch.search.pipeline.AbstractProcessor;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.opensearch.search.pipeline.SearchRequestProcessor;
import org.sesa.opensearch.search.executors.HybridSearchExecutor;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.query.QueryEncodingCache;
import org.sesa.opensearch.util.AsyncOnly;

import java.util.List;
import java.util.Objects;

/**
 * {@code sesa_query}: the search request processor that turns a search carrying {@code ext.sesa} into the branch
 * searches of its mode. It only routes: a search without {@code ext.sesa} passes through untouched; one with it is
 * checked by {@link SesaRequestValidator} and handed to the {@link HybridSearchExecutor}, which encodes the query,
 * rewrites the request into its main branch, starts the side branches and leaves the plan for {@code sesa_fuse}
 * and {@code sesa_rerank}. Asynchronous only: the transport or search thread that runs the pipeline never waits for
 * the inference server.
 */
public final class SesaQueryProcessor extends AbstractProcessor implements SearchRequestProcessor {

    public static final String TYPE = "sesa_query";

    private final HybridSearchExecutor executor;

    SesaQueryProcessor(String tag, String description, boolean ignoreFailure, HybridSearchExecutor executor) {
        super(tag, description, ignoreFailure);
        this.executor = Objects.requireNonNull(executor);
    }

    @Override
    public String getType() {
        return TYPE;
    }

    public List<String> getTextFields() {
        return executor.queries().textFields();
    }

    public String getTargetPrefix() {
        return executor.queries().names().prefix();
    }

    public int getWindowSize() {
        return executor.windowSize();
    }

    public int getKnnK() {
        return executor.queries().knnK();
    }

    public int getTopKConcepts() {
        return executor.topKConcepts();
    }

    public TimeValue getTimeout() {
        return executor.timeout();
    }

    public boolean isStrict() {
        return executor.strict();
    }

    public QueryEncodingCache cache() {
        return executor.cache();
    }

    /** What runs the searches of this processor's requests (one per processor, with its encoding cache). */
    public HybridSearchExecutor executor() {
        return executor;
    }

    @Override
    public void processRequestAsync(SearchRequest request, PipelineProcessingContext context, ActionListener<SearchRequest> listener) {
        SesaSearchExt ext = SesaSearchExt.find(request.source());
        if (ext == null) {
            listener.onResponse(request);
            return;
        }
        try {
            SesaRequestValidator.validate(request);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        executor.execute(request, context, ext, listener);
    }

    /** The synchronous path would block a search thread on the network; OpenSearch calls the async one. */
    @Override
    public SearchRequest processRequest(SearchRequest request) {
        throw AsyncOnly.syncCall(TYPE, "processRequestAsync");
    }
}
