package org.sesa.opensearch.index;

import org.opensearch.Version;
import org.opensearch.cluster.ClusterName;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.AliasMetadata;
import org.opensearch.cluster.metadata.ComponentTemplate;
import org.opensearch.cluster.metadata.ComposableIndexTemplate;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.IndexTemplateMetadata;
import org.opensearch.cluster.metadata.MappingMetadata;
import org.opensearch.cluster.metadata.Metadata;
import org.opensearch.cluster.metadata.Template;
import org.opensearch.common.compress.CompressedXContent;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.sesa.opensearch.mapper.SesaTextMappingTransformer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Index mappings, templates and cluster states for the mapping check and the sesa_text tests. */
public final class MappingFixtures {

    /** The dimension of the fake inference server's vectors. */
    public static final int DIMENSION = 2;

    /** Every index maps every SESA field as the fake server's output needs. */
    public static final TargetMappings FITS = (index, names) -> MappingVerdict.of(
        "index [" + index + "]",
        sesaProperties(names.prefix(), DIMENSION),
        names,
        null
    );

    private MappingFixtures() {}

    /** The properties a sesa_text field adds for {@code prefix}: what SESA needs, with vectors of {@code dimension}. */
    public static Map<String, Object> sesaProperties(String prefix, int dimension) {
        return new LinkedHashMap<>(SesaTextMappingTransformer.siblings(prefix, dimension));
    }

    /** A JSON object as a mutable map. */
    public static Map<String, Object> json(String json) {
        return XContentHelper.convertToMap(JsonXContent.jsonXContent, json, true);
    }

    /**
     * The mapping of the repository's {@code sesa-*} index template ({@code schemas/opensearch/index-template.json}),
     * with its dimension filled in as {@code sesa up} does.
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> sesaTemplateMapping(int dimension) {
        try {
            String text = Files.readString(Path.of("..", "schemas", "opensearch", "index-template.json"), StandardCharsets.UTF_8)
                .replace("\"{{dense_dimension}}\"", Integer.toString(dimension))
                .replace("\"{{models_meta}}\"", "{}");
            Map<String, Object> template = json(text);
            return (Map<String, Object>) ((Map<String, Object>) template.get("template")).get("mappings");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** An index (UUID {@code <name>-uuid}) with {@code mapping} ({@code {"properties": ...}}); none when null. */
    public static IndexMetadata index(String name, long mappingVersion, Map<String, Object> mapping, String writeAlias) {
        IndexMetadata.Builder b = IndexMetadata.builder(name)
            .settings(Settings.builder().put(IndexMetadata.SETTING_VERSION_CREATED, Version.CURRENT).put(IndexMetadata.SETTING_INDEX_UUID, name + "-uuid"))
            .numberOfShards(1)
            .numberOfReplicas(0)
            .mappingVersion(mappingVersion);
        if (mapping != null) {
            b.putMapping(new MappingMetadata("_doc", mapping));
        }
        if (writeAlias != null) {
            b.putAlias(AliasMetadata.builder(writeAlias).writeIndex(true));
        }
        return b.build();
    }

    public static IndexMetadata index(String name, Map<String, Object> mapping) {
        return index(name, 1, mapping, null);
    }

    /** What a cluster state needs for templates: a name and what it adds. */
    public interface Put {
        void into(Metadata.Builder metadata) throws IOException;
    }

    /** A composable template for {@code pattern} with {@code mapping} and component templates. */
    public static Put composable(String name, String pattern, Map<String, Object> mapping, String... components) {
        return m -> m.put(
            name,
            new ComposableIndexTemplate(List.of(pattern), new Template(null, compressed(mapping), null), List.of(components), 100L, null, null)
        );
    }

    public static Put component(String name, Map<String, Object> mapping) {
        return m -> m.put(name, new ComponentTemplate(new Template(null, compressed(mapping), null), null, null));
    }

    /** A legacy template for {@code pattern} whose mapping has {@code properties} (wrapped in {@code _doc}, as they are). */
    public static Put legacy(String name, String pattern, int order, Map<String, Object> properties) {
        return m -> m.put(
            IndexTemplateMetadata.builder(name)
                .patterns(List.of(pattern))
                .order(order)
                .putMapping("_doc", compressed(Map.of("_doc", mapping(properties))))
        );
    }

    private static CompressedXContent compressed(Map<String, Object> mapping) throws IOException {
        return new CompressedXContent(
            org.opensearch.core.common.bytes.BytesReference.bytes(JsonXContent.contentBuilder().map(mapping))
        );
    }

    /** A state of {@code version} with these indices and templates. */
    public static ClusterState state(long version, List<IndexMetadata> indices, Put... templates) {
        Metadata.Builder m = Metadata.builder().version(version);
        for (IndexMetadata im : indices) {
            m.put(im, false);
        }
        try {
            for (Put t : templates) {
                t.into(m);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return ClusterState.builder(ClusterName.DEFAULT).metadata(m).build();
    }

    /** {@code {"properties": properties}}. */
    public static Map<String, Object> mapping(Map<String, Object> properties) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("properties", properties);
        return m;
    }

    /** A copy of {@code properties} with {@code field} mapped as {@code definition}. */
    public static Map<String, Object> with(Map<String, Object> properties, String field, Object definition) {
        Map<String, Object> copy = new LinkedHashMap<>(properties);
        copy.put(field, definition);
        return copy;
    }
}
