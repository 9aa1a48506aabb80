package org.sesa.opensearch.index;

import org.opensearch.action.IndicesRequest;
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
        if (cs == null || r == null || request.indices() == null) {
            return null;
        }
        List<String> local = TargetIndices.local(request);
        if (local.size() < request.indices().length) {
            return null; // a remote index: its statistics are not this node's to key
        }
        List<String> ids = new ArrayList<>();
        try {
            for (String index : TargetIndices.concrete(cs, r, request, local)) {
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
