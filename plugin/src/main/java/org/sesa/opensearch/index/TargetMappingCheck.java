package org.sesa.opensearch.index;

import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexAbstraction;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.IndexTemplateMetadata;
import org.opensearch.cluster.metadata.MappingMetadata;
import org.opensearch.cluster.metadata.Metadata;
import org.opensearch.cluster.metadata.MetadataIndexTemplateService;
import org.opensearch.common.compress.CompressedXContent;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.XContentType;
import org.sesa.opensearch.mapper.MappingMaps;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * {@link TargetMappings} from the node's cluster state. The mapping of an index (the write index behind an alias or
 * data stream) comes from {@code IndexMetadata.mapping()}; its verdict is kept per index UUID, mapping version and
 * target prefix, so a document costs a map lookup and a changed mapping (a new mapping version) is checked again.
 *
 * <p>A target that does not exist yet is created by the bulk request from the index template that matches its name:
 * the composable (V2) template OpenSearch would pick ({@link MetadataIndexTemplateService#findV2Template}, its
 * mappings and those of its component templates folded in order), else the legacy (V1) templates that match. No
 * template at all means dynamic mappings: nothing fits then. Those verdicts are kept per cluster metadata version
 * (a template change makes a new one).
 */
public final class TargetMappingCheck implements TargetMappings {

    private static final int MAX_CACHED = 4096;

    private final Supplier<ClusterState> state;
    private final Map<String, MappingVerdict> cache = new ConcurrentHashMap<>();

    /** @param state the node's applied cluster state (null before it has one) */
    public TargetMappingCheck(Supplier<ClusterState> state) {
        this.state = state;
    }

    @Override
    public MappingVerdict verdict(String target, SesaFieldNames names) {
        return verdict(target, names, false);
    }

    @Override
    public MappingVerdict verdict(String target, SesaFieldNames names, boolean chunks) {
        ClusterState cs = target == null ? null : state.get();
        if (cs == null) {
            return MappingVerdict.UNCHECKED;
        }
        Metadata metadata = cs.metadata();
        IndexAbstraction abstraction = metadata.getIndicesLookup().get(target);
        if (abstraction != null) {
            IndexMetadata im = abstraction.getWriteIndex();
            if (im == null) {
                return MappingVerdict.UNCHECKED; // an alias without a write index: OpenSearch refuses the write itself
            }
            String key = "index/" + im.getIndexUUID() + "/" + im.getMappingVersion() + "/" + names.prefix() + (chunks ? "/chunks" : "");
            return cached(key, () -> {
                MappingMetadata mapping = im.mapping();
                Map<String, Object> properties = mapping == null ? Map.of() : MappingMaps.properties(mapping.sourceAsMap());
                String where = "index [" + im.getIndex().getName() + "]";
                return MappingVerdict.of(where, properties, names, mapping == null ? where + " has no mapping" : null, chunks);
            });
        }
        String key = "absent/" + metadata.clusterUUID() + "/" + metadata.version() + "/" + target + "/" + names.prefix() + (chunks ? "/chunks" : "");
        return cached(key, () -> forTemplates(cs, target, names, chunks));
    }

    private MappingVerdict cached(String key, Supplier<MappingVerdict> compute) {
        MappingVerdict v = cache.get(key);
        if (v == null) {
            if (cache.size() >= MAX_CACHED) {
                cache.clear();
            }
            v = cache.computeIfAbsent(key, k -> compute.get());
        }
        return v;
    }

    /**
     * The mappings the templates that match {@code index} would give it when a bulk request creates it, in the order
     * OpenSearch folds them (the composable template OpenSearch would pick with its component templates, else the
     * legacy templates, lowest order first).
     *
     * @param where    what the reasons call the index
     * @param mappings the mappings, empty when no template matches (dynamic mappings)
     * @param error    why the mappings cannot be read, or null
     * @param matched  whether any template matches
     */
    record TemplateMappings(String where, List<Map<String, Object>> mappings, String error, boolean matched) {

        static TemplateMappings of(ClusterState cs, String index) {
            Metadata metadata = cs.metadata();
            String v2 = MetadataIndexTemplateService.findV2Template(metadata, index, false);
            List<Map<String, Object>> mappings = new ArrayList<>();
            if (v2 != null) {
                String where = "index [" + index + "] (not created yet: index template [" + v2 + "] would map it)";
                try {
                    for (CompressedXContent m : MetadataIndexTemplateService.collectMappings(cs, v2, index)) {
                        mappings.add(parse(m));
                    }
                } catch (Exception e) {
                    return new TemplateMappings(where, List.of(), where + ": its mappings cannot be read: " + e.getMessage(), true);
                }
                return new TemplateMappings(where, mappings, null, true);
            }
            List<IndexTemplateMetadata> v1 = MetadataIndexTemplateService.findV1Templates(metadata, index, null);
            if (v1.isEmpty()) {
                return new TemplateMappings("index [" + index + "] (not created yet)", List.of(), null, false);
            }
            List<String> templateNames = new ArrayList<>();
            for (int i = v1.size() - 1; i >= 0; i--) { // highest order first: apply the lowest first
                IndexTemplateMetadata t = v1.get(i);
                templateNames.add(t.name());
                if (t.mappings() != null) {
                    mappings.add(parse(t.mappings()));
                }
            }
            return new TemplateMappings(
                "index [" + index + "] (not created yet: legacy index templates " + templateNames + " would map it)",
                mappings,
                null,
                true
            );
        }
    }

    /** The verdict for an index the bulk request will create from the templates that match its name. */
    private static MappingVerdict forTemplates(ClusterState cs, String index, SesaFieldNames names, boolean chunks) {
        TemplateMappings t = TemplateMappings.of(cs, index);
        if (t.error() != null) {
            return new MappingVerdict(t.where(), List.of(t.error()), null);
        }
        if (t.matched() == false) {
            String preamble = "index ["
                + index
                + "] does not exist and no index template matches its name, so it would be created with dynamic mappings";
            return MappingVerdict.of(t.where(), Map.of(), names, preamble, chunks);
        }
        return MappingVerdict.of(t.where(), MappingMaps.mergedProperties(t.mappings()), names, null, chunks);
    }

    private static Map<String, Object> parse(CompressedXContent mapping) {
        return XContentHelper.convertToMap(mapping.uncompressed(), true, XContentType.JSON).v2();
    }
}
