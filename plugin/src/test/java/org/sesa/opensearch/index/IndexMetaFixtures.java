package org.sesa.opensearch.index;

import org.opensearch.Version;
import org.opensearch.cluster.ClusterName;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.AliasMetadata;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.MappingMetadata;
import org.opensearch.cluster.metadata.Metadata;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;

import java.util.Map;

/** Cluster states whose indices carry a given mapping {@code _meta}, to feed {@link IndexSesaMeta} without a cluster. */
public final class IndexMetaFixtures {

    private IndexMetaFixtures() {}

    /**
     * An index (one shard, UUID {@code <name>-uuid}) whose mapping is {@code {"_meta": <metaJson>}}; no mapping when
     * {@code metaJson} is null.
     *
     * @param writeAlias an alias whose write index this is, or null
     */
    public static IndexMetadata index(String name, long mappingVersion, String metaJson, String writeAlias) {
        IndexMetadata.Builder b = IndexMetadata.builder(name)
            .settings(Settings.builder().put(IndexMetadata.SETTING_VERSION_CREATED, Version.CURRENT).put(IndexMetadata.SETTING_INDEX_UUID, name + "-uuid"))
            .numberOfShards(1)
            .numberOfReplicas(0)
            .mappingVersion(mappingVersion);
        if (metaJson != null) {
            Map<String, Object> meta = XContentHelper.convertToMap(JsonXContent.jsonXContent, metaJson, true);
            b.putMapping(new MappingMetadata("_doc", Map.of("_meta", meta)));
        }
        if (writeAlias != null) {
            b.putAlias(AliasMetadata.builder(writeAlias).writeIndex(true));
        }
        return b.build();
    }

    public static IndexMetadata index(String name, String metaJson) {
        return index(name, 1, metaJson, null);
    }

    public static ClusterState state(IndexMetadata... indices) {
        return state(0, indices);
    }

    /** A state whose metadata has {@code version} (a node's changes with every index, alias or mapping change). */
    public static ClusterState state(long version, IndexMetadata... indices) {
        Metadata.Builder m = Metadata.builder().version(version);
        for (IndexMetadata im : indices) {
            m.put(im, false);
        }
        return ClusterState.builder(ClusterName.DEFAULT).metadata(m).build();
    }

    /** {@code {"sesa": {"evidence": {"<prefix>": <recordJson>}}}}: one record under the conventions' keys. */
    public static String evidenceMeta(String prefix, String recordJson) {
        return "{\"sesa\": {\"evidence\": {\"" + prefix + "\": " + recordJson + "}}}";
    }

    /** {@code {"sesa": {"models": {"<prefix>": <modelsJson>}}}}: the models an index records for a prefix. */
    public static String modelsMeta(String prefix, String modelsJson) {
        return "{\"sesa\": {\"models\": {\"" + prefix + "\": " + modelsJson + "}}}";
    }

    /** A full, valid record: min_max .45/.45/.1, k 60, rerank enabled with weight .7, a measured report. */
    public static final String RECORD = "{\"version\": 1,"
        + " \"fusion\": {\"technique\": \"min_max\", \"weights\": {\"bm25\": 0.45, \"dense\": 0.45, \"concepts\": 0.1}, \"rank_constant\": 60},"
        + " \"rerank\": {\"enabled\": true, \"weight\": 0.7},"
        + " \"measured\": {\"dataset\": \"scifact\", \"split\": \"train\", \"queries\": 809, \"ndcg@10\": {\"gain\": 0.021, \"p\": 0.003}}}";
}
