package org.sesa.opensearch.util;

import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Map;

/**
 * Names and defaults shared with the Python side, read from {@code schemas/opensearch/conventions.json}
 * (bundled into the jar at build time). Java code asks this class instead of repeating the strings, so a
 * rename happens in one file for both languages.
 */
public final class SesaConventions {

    /** Classpath location the build copies {@code ../schemas/opensearch/conventions.json} to. */
    public static final String RESOURCE = "/org/sesa/opensearch/conventions.json";

    private static final SesaConventions INSTANCE = load();

    private final Map<String, Object> root;

    private SesaConventions(Map<String, Object> root) {
        this.root = root;
    }

    /** The bundled conventions; fails class initialisation (and plugin loading) if the resource is broken. */
    public static SesaConventions get() {
        return INSTANCE;
    }

    private static SesaConventions load() {
        try (InputStream in = SesaConventions.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("missing classpath resource " + RESOURCE + " (the build copies it from schemas/opensearch)");
            }
            return new SesaConventions(XContentHelper.convertToMap(JsonXContent.jsonXContent, in, true));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
    }

    public String pluginName() {
        return string("plugin_name");
    }

    public String defaultTargetPrefix() {
        return string("default_target_prefix");
    }

    /** The index pattern of the {@code sesa-*} index template, e.g. {@code sesa-*}. */
    public String defaultIndexPattern() {
        return string("default_index_pattern");
    }

    /** Appended to a {@code sesa_text} field's name to make its target prefix: {@code body} -> {@code body_sesa}. */
    public String sesaTextTargetSuffix() {
        return string("sesa_text_target_suffix");
    }

    public String defaultInferenceEndpoint() {
        return string("default_inference_endpoint");
    }

    /** Top-level key of an index mapping's {@code _meta} that holds SESA metadata (e.g. {@code _meta.sesa.models}). */
    public String indexMetaKey() {
        return string("index_meta_key");
    }

    /**
     * Key, under {@link #indexMetaKey()}, of an index's evidence records per target prefix (e.g.
     * {@code _meta.sesa.evidence.sesa}), written by {@code sesa tune} and read by the search pipeline.
     */
    public String indexEvidenceKey() {
        return string("index_evidence_key");
    }

    /** Suffix appended to a target prefix, e.g. {@code fieldSuffix("dense")} is {@code "_dense"}. */
    public String fieldSuffix(String name) {
        return nested("field_suffixes", name);
    }

    /** A value of the {@code <prefix>_status} field, e.g. {@code statusValue("encoded")}. */
    public String statusValue(String name) {
        return nested("status_values", name);
    }

    private String string(String key) {
        Object value = root.get(key);
        if (value instanceof String s && s.isEmpty() == false) {
            return s;
        }
        throw new IllegalStateException("conventions.json has no string [" + key + "]");
    }

    private String nested(String group, String key) {
        Object map = root.get(group);
        if (map instanceof Map<?, ?> m && m.get(key) instanceof String s && s.isEmpty() == false) {
            return s;
        }
        throw new IllegalStateException("conventions.json has no string [" + group + "." + key + "]");
    }
}
