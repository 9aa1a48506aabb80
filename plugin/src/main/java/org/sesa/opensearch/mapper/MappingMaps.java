package org.sesa.opensearch.mapper;

import org.sesa.inference.v1.Chunking;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reading index mappings as the maps OpenSearch hands around: the mapping of an index in the cluster state
 * ({@code MappingMetadata.sourceAsMap()}), of a create-index or put-mapping request, of index templates, and the
 * {@code index_mappings} / {@code index_template_mappings} a system ingest processor factory gets. Some of them wrap
 * the mapping in a {@code _doc} object and some do not; templates may use dotted field names that OpenSearch only
 * expands when it parses them. These helpers read all of those forms.
 */
public final class MappingMaps {

    public static final String DOC = "_doc";
    public static final String PROPERTIES = "properties";
    public static final String TYPE = "type";
    public static final String META = "_meta";
    public static final String NESTED = "nested";
    /** Deeper than any sensible mapping; stops a malformed one from recursing without end. */
    private static final int MAX_DEPTH = 100;

    private MappingMaps() {}

    /** The mapping itself, or what its {@code _doc} holds. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> root(Map<String, Object> mapping) {
        if (mapping == null) {
            return Map.of();
        }
        if (mapping.get(DOC) instanceof Map<?, ?> doc && mapping.containsKey(PROPERTIES) == false) {
            return (Map<String, Object>) doc;
        }
        return mapping;
    }

    /** The top-level {@code properties} of a mapping (empty when it has none). */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> properties(Map<String, Object> mapping) {
        return root(mapping).get(PROPERTIES) instanceof Map<?, ?> p ? (Map<String, Object>) p : Map.of();
    }

    /**
     * The mapping of the field at {@code path} (dot-separated) inside {@code properties}, following object fields'
     * {@code properties} and dotted names; null when it is not mapped.
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> field(Map<String, Object> properties, String path) {
        if (properties == null || path.isEmpty()) {
            return null;
        }
        if (properties.get(path) instanceof Map<?, ?> direct) {
            return (Map<String, Object>) direct;
        }
        for (int dot = path.indexOf('.'); dot > 0; dot = path.indexOf('.', dot + 1)) {
            if (properties.get(path.substring(0, dot)) instanceof Map<?, ?> object && object.get(PROPERTIES) instanceof Map<?, ?> sub) {
                Map<String, Object> found = field((Map<String, Object>) sub, path.substring(dot + 1));
                if (found != null) {
                    return found;
                }
            }
        }
        return null;
    }

    /**
     * One {@code sesa_text} field of a mapping.
     *
     * @param path             its full path, e.g. {@code body} or {@code doc.body}
     * @param config           its mapping (type and parameters)
     * @param parentProperties the {@code properties} map that holds it, where its generated siblings go
     * @param name             its key in {@code parentProperties} (the last path element, or a dotted name)
     * @param inNested         whether it sits inside a {@code nested} field
     */
    public record SesaTextField(String path, Map<String, Object> config, Map<String, Object> parentProperties, String name, boolean inNested) {

        /** The field's {@code concept_space} parameter; empty: the server's default space. */
        public String conceptSpace() {
            return config.get(SesaTextFieldMapper.CONCEPT_SPACE) instanceof String s ? s : "";
        }

        /**
         * The field's {@code chunking} parameter, or null when absent (off).
         *
         * @throws org.opensearch.index.mapper.MapperParsingException when it is not a valid option
         */
        public Chunking chunking() {
            Object raw = config.get(SesaTextFieldMapper.CHUNKING);
            return raw == null ? null : SesaTextFieldMapper.parseChunking(path, raw);
        }
    }

    private record Level(Map<String, Object> properties, String path, boolean inNested, int depth) {}

    /** Every {@code sesa_text} field under {@code properties}, by full path, in mapping order. */
    @SuppressWarnings("unchecked")
    public static Map<String, SesaTextField> sesaTextFields(Map<String, Object> properties) {
        Map<String, SesaTextField> out = new LinkedHashMap<>();
        Deque<Level> todo = new ArrayDeque<>();
        todo.push(new Level(properties, "", false, 0));
        while (todo.isEmpty() == false) {
            Level level = todo.pop();
            if (level.depth() > MAX_DEPTH) {
                throw new IllegalArgumentException("the mapping is nested more than " + MAX_DEPTH + " levels deep");
            }
            for (Map.Entry<String, Object> e : level.properties().entrySet()) {
                if (!(e.getValue() instanceof Map<?, ?> raw)) {
                    continue; // not a field definition: OpenSearch reports it when it parses the mapping
                }
                Map<String, Object> config = (Map<String, Object>) raw;
                String path = level.path().isEmpty() ? e.getKey() : level.path() + "." + e.getKey();
                if (SesaTextFieldMapper.CONTENT_TYPE.equals(config.get(TYPE))) {
                    out.put(path, new SesaTextField(path, config, level.properties(), e.getKey(), level.inNested()));
                }
                if (config.get(PROPERTIES) instanceof Map<?, ?> sub) {
                    boolean nested = level.inNested() || NESTED.equals(config.get(TYPE));
                    todo.push(new Level((Map<String, Object>) sub, path, nested, level.depth() + 1));
                }
            }
        }
        return out;
    }

    /**
     * One {@code properties} map from several mappings applied in order, as index templates are (a later one's field
     * replaces an earlier one's, object fields are merged field by field).
     */
    public static Map<String, Object> mergedProperties(List<Map<String, Object>> mappings) {
        Map<String, Object> merged = new LinkedHashMap<>();
        for (Map<String, Object> mapping : mappings) {
            mergeInto(merged, properties(mapping), 0);
        }
        return merged;
    }

    @SuppressWarnings("unchecked")
    private static void mergeInto(Map<String, Object> target, Map<String, Object> source, int depth) {
        if (depth > MAX_DEPTH) {
            throw new IllegalArgumentException("the mapping is nested more than " + MAX_DEPTH + " levels deep");
        }
        for (Map.Entry<String, Object> e : source.entrySet()) {
            Object mine = target.get(e.getKey());
            if (mine instanceof Map<?, ?> a
                && e.getValue() instanceof Map<?, ?> b
                && a.get(PROPERTIES) instanceof Map<?, ?> aProps
                && b.get(PROPERTIES) instanceof Map<?, ?> bProps) {
                Map<String, Object> object = new LinkedHashMap<>((Map<String, Object>) a);
                object.putAll((Map<String, Object>) b);
                Map<String, Object> props = new LinkedHashMap<>((Map<String, Object>) aProps);
                mergeInto(props, (Map<String, Object>) bProps, depth + 1);
                object.put(PROPERTIES, props);
                target.put(e.getKey(), object);
            } else {
                target.put(e.getKey(), e.getValue());
            }
        }
    }

    /** How a field is mapped, for messages: its type, {@code object}, or {@code not mapped}. */
    public static String describe(Map<String, Object> field) {
        if (field == null) {
            return "not mapped";
        }
        Object type = field.get(TYPE);
        if (type != null) {
            return String.valueOf(type);
        }
        return field.containsKey(PROPERTIES) ? "object" : "a mapping without a type";
    }
}
