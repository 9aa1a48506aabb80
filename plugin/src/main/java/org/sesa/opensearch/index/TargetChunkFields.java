package org.sesa.opensearch.index;

import org.opensearch.action.IndicesRequest;
import org.opensearch.action.support.IndicesOptions;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;
import org.opensearch.cluster.metadata.MappingMetadata;
import org.opensearch.cluster.metadata.Metadata;
import org.sesa.opensearch.mapper.MappingMaps;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * {@link ChunkFieldLookup} from the node's cluster state: the search's targets are expanded (leniently, with the
 * request's wildcard options; remote indices are skipped) and each concrete index's mapping is looked at. The answer is
 * kept per cluster metadata version, targets and field (a mapping change makes a new metadata version), so a search
 * that repeats its targets costs a map lookup.
 */
public final class TargetChunkFields implements ChunkFieldLookup {

    private static final int MAX_CACHED = 4096;

    private final Supplier<ClusterState> state;
    private final Supplier<IndexNameExpressionResolver> resolver;
    private final Map<String, Boolean> cache = new ConcurrentHashMap<>();

    /**
     * @param state    the node's applied cluster state (null before it has one)
     * @param resolver the node's index name resolver (null before the node made it)
     */
    public TargetChunkFields(Supplier<ClusterState> state, Supplier<IndexNameExpressionResolver> resolver) {
        this.state = state;
        this.resolver = resolver;
    }

    @Override
    public boolean mapsChunks(IndicesRequest request, String chunksField) {
        ClusterState cs = state.get();
        IndexNameExpressionResolver r = resolver.get();
        if (cs == null || r == null) {
            return false;
        }
        List<String> local = TargetIndices.local(request); // a remote index's mapping is not known here
        if (TargetIndices.onlyRemote(request, local)) {
            return false;
        }
        IndicesOptions o = TargetIndices.options(request);
        Metadata metadata = cs.metadata();
        String key = metadata.clusterUUID() + "/" + metadata.version() + "/" + o.expandWildcardsOpen() + o.expandWildcardsClosed()
            + o.expandWildcardsHidden() + "/" + chunksField + "/" + String.join("\u0000", local);
        Boolean cached = cache.get(key);
        if (cached != null) {
            return cached;
        }
        boolean found = false;
        try {
            for (String index : TargetIndices.concrete(cs, r, request, local)) {
                IndexMetadata im = metadata.index(index);
                MappingMetadata mapping = im == null ? null : im.mapping();
                if (mapping != null) {
                    Map<String, Object> field = MappingMaps.field(MappingMaps.properties(mapping.sourceAsMap()), chunksField);
                    if (field != null && MappingMaps.NESTED.equals(field.get(MappingMaps.TYPE))) {
                        found = true;
                        break;
                    }
                }
            }
        } catch (RuntimeException e) {
            return false; // an expression the resolver rejects: the search fails with its reason
        }
        if (cache.size() >= MAX_CACHED) {
            cache.clear();
        }
        cache.put(key, found);
        return found;
    }
}
