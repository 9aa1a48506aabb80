package org.sesa.opensearch.search;

import org.opensearch.search.fetch.FetchContext;
import org.opensearch.search.fetch.FetchSubPhase;
import org.opensearch.search.fetch.FetchSubPhaseProcessor;
import org.sesa.opensearch.search.ext.SesaSearchExt;

/**
 * Fails a shard fetch that still carries {@code ext.sesa}. {@code sesa_query} removes the extension when it
 * rewrites a request, so reaching a shard with it means the search skipped the SESA pipeline; without this guard
 * it would silently run as a plain search of the request's {@code query}.
 *
 * <p>A fetch sub-phase, because exceptions of search operation listeners are only logged. It therefore catches
 * every search that returns hits; a {@code size: 0} search, or one without matches, still runs unguarded.
 */
public final class SesaExtGuard implements FetchSubPhase {

    public static final String MESSAGE = "[ext.sesa] needs a search pipeline with the sesa_query processor: "
        + "add ?search_pipeline=sesa-search (or set index.search.default_pipeline)";

    @Override
    public FetchSubPhaseProcessor getProcessor(FetchContext context) {
        if (context.getSearchExt(SesaSearchExt.NAME) != null) {
            throw new IllegalArgumentException(MESSAGE);
        }
        return null;
    }
}
