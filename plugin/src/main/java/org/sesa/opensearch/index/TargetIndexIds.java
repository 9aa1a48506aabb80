package org.sesa.opensearch.index;

import org.opensearch.action.IndicesRequest;
import org.opensearch.action.support.IndicesOptions;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The concrete indices a search reads, by UUID (sorted, joined): what a cache of statistics about those indices is
 * keyed by, so an index deleted and created again under its name is a new key. Null when the targets cannot be
 * resolved on this node (no cluster state yet, a remote index, an expression the resolver rejects): do not cache.
 */
public final class TargetIndexIds implements Function<IndicesRequest, String> {

    private final Supplier<ClusterState> state;
    private final Supplier<IndexNameExpressionResolver> resolver;

    public TargetIndexIds(Supplier<ClusterState> state, Supplier<IndexNameExpressionResolver> resolver) {
        this.state = state;
        this.resolver = resolver;
    }

    @Override
    public String apply(IndicesRequest request) {
        ClusterState cs = state.get();
        IndexNameExpressionResolver r = resolver.get();
        String[] expressions = request.indices();
        if (cs == null || r == null || expressions == null) {
            return null;
        }
        for (String e : expressions) {
            if (e.startsWith("<") == false && e.indexOf(':') > 0) {
                return null; // cluster:index, a remote index
            }
        }
        IndicesOptions o = request.indicesOptions() == null ? IndicesOptions.strictExpandOpen() : request.indicesOptions();
        List<String> ids = new ArrayList<>();
        try {
            IndicesOptions lenient = IndicesOptions.fromOptions(true, true, o.expandWildcardsOpen(), o.expandWildcardsClosed(), o.expandWildcardsHidden());
            for (String index : r.concreteIndexNames(cs, lenient, expressions)) {
                IndexMetadata im = cs.metadata().index(index);
                if (im == null) {
                    return null;
                }
                ids.add(im.getIndexUUID());
            }
        } catch (RuntimeException e) {
            return null;
        }
        if (ids.isEmpty()) {
            return null;
        }
        Collections.sort(ids);
        return String.join(",", ids);
    }
}
