package org.sesa.opensearch.index;

import org.opensearch.action.IndicesRequest;

/**
 * The models the target indices of a search record for a target prefix ({@link TargetModels}), for {@code sesa_query}
 * to check the query encoding against. Separate from the reader ({@link IndexSesaMeta}) so tests need no cluster.
 */
@FunctionalInterface
public interface TargetModelsLookup {

    /** No index ever records its models: nothing is checked. */
    TargetModelsLookup NONE = (request, prefix) -> TargetModels.NONE;

    /**
     * @param request the search, whose indices (names, aliases, patterns, data streams) and indices options say what it
     *                targets; indices of a remote cluster are never known locally
     * @param prefix  the target prefix of the pipeline's {@code sesa_query}
     */
    TargetModels targetModels(IndicesRequest request, String prefix);
}
