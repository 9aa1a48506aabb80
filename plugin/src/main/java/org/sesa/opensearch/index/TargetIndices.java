package org.sesa.opensearch.index;

import org.opensearch.action.IndicesRequest;
import org.opensearch.action.support.IndicesOptions;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;

import java.util.ArrayList;
import java.util.List;

/**
 * How the plugin's lookups expand a search's targets on this node, the one rule {@link TargetChunkFields} and
 * {@link TargetIndexIds} share: remote {@code cluster:index} expressions are set aside (this node does not know their
 * metadata), the others are expanded leniently (missing or closed indices skipped, the request's wildcard options).
 */
final class TargetIndices {

    private TargetIndices() {}

    /** The request's expressions that name local indices ({@code <date math>} included), in order. */
    static List<String> local(IndicesRequest request) {
        List<String> local = new ArrayList<>();
        for (String expression : request.indices() == null ? new String[0] : request.indices()) {
            if (expression.startsWith("<") || expression.indexOf(':') <= 0) {
                local.add(expression);
            }
        }
        return local;
    }

    /** Whether the request names remote indices only (and at least one). */
    static boolean onlyRemote(IndicesRequest request, List<String> local) {
        return local.isEmpty() && request.indices() != null && request.indices().length > 0;
    }

    /** The request's wildcard options (strict-expand-open when it has none). */
    static IndicesOptions options(IndicesRequest request) {
        return request.indicesOptions() == null ? IndicesOptions.strictExpandOpen() : request.indicesOptions();
    }

    /**
     * The concrete local indices of {@code local}, expanded leniently with the request's wildcard options.
     *
     * @throws RuntimeException an expression the resolver rejects (the search itself then fails with its reason)
     */
    static String[] concrete(ClusterState state, IndexNameExpressionResolver resolver, IndicesRequest request, List<String> local) {
        IndicesOptions o = options(request);
        IndicesOptions lenient = IndicesOptions.fromOptions(true, true, o.expandWildcardsOpen(), o.expandWildcardsClosed(), o.expandWildcardsHidden());
        return resolver.concreteIndexNames(state, lenient, local.toArray(new String[0]));
    }
}
