package org.sesa.opensearch.ingest;

import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexAbstraction;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.MappingMetadata;
import org.sesa.opensearch.util.SesaConventions;

import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Reads {@code _meta.<index_meta_key>.models} from the write index behind the document's target (index,
 * alias or data stream) in the local cluster state. Parsed mappings are cached per index UUID and mapping
 * version, so the per-document cost is a map lookup.
 */
public final class ClusterModelMetaLookup implements ModelMetaLookup {

    private static final int MAX_CACHED = 1024;

    private final Supplier<ClusterState> state;
    private final String metaKey = SesaConventions.get().indexMetaKey();
    private final Map<String, Map<String, Object>> cache = new ConcurrentHashMap<>();

    public ClusterModelMetaLookup(Supplier<ClusterState> state) {
        this.state = state;
    }

    @Override
    public Object expectedModels(String index, String prefix) {
        if (index == null) {
            return null;
        }
        ClusterState cs = state.get();
        if (cs == null) {
            return null;
        }
        IndexAbstraction abstraction = cs.metadata().getIndicesLookup().get(index);
        if (abstraction == null) {
            return null; // index will be auto-created: nothing recorded yet
        }
        IndexMetadata im = abstraction.getWriteIndex();
        if (im == null) {
            return null;
        }
        String key = im.getIndexUUID() + "/" + im.getMappingVersion();
        Map<String, Object> models = cache.get(key);
        if (models == null) {
            models = readModels(im.mapping());
            if (cache.size() >= MAX_CACHED) {
                cache.clear();
            }
            cache.put(key, models);
        }
        return models.get(prefix);
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> readModels(MappingMetadata mapping) {
        if (mapping == null) {
            return Map.of();
        }
        Object meta = mapping.sourceAsMap().get("_meta");
        if (meta instanceof Map<?, ?> m && m.get(metaKey) instanceof Map<?, ?> sesa && sesa.get("models") instanceof Map<?, ?> models) {
            return Collections.unmodifiableMap(new HashMap<>((Map<String, Object>) models));
        }
        return Map.of();
    }
}
