package org.sesa.opensearch.search.executors;

import org.opensearch.action.search.SearchRequest;
import org.opensearch.core.action.ActionListener;
import org.sesa.opensearch.search.query.ConceptIdf;

import java.util.List;

/**
 * Reads how many documents of a search's target indices carry each of the query's concepts, for the concept
 * branch's idf ({@link ConceptIdf}). {@link SearchConceptStats} on a node; {@link #NONE} where no statistics are
 * read (the branch then scores with the concepts' weights alone).
 */
@FunctionalInterface
public interface ConceptStatsLookup {

    /** Answers null: no statistics. */
    ConceptStatsLookup NONE = (template, field, keys, listener) -> listener.onResponse(null);

    /**
     * @param template the user's search (indices, routing, preference are copied; its query is not: idf is a statistic
     *                 of the whole target)
     * @param field    the rank_features field of the concept vectors ({@code <prefix>_concepts})
     * @param keys     the query's concept keys
     * @param listener the statistics, or a failure (the caller then searches without idf)
     */
    void lookup(SearchRequest template, String field, List<String> keys, ActionListener<ConceptIdf> listener);
}
