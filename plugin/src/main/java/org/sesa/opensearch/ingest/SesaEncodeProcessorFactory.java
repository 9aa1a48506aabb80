package org.sesa.opensearch.ingest;

import org.opensearch.common.unit.TimeValue;
import org.opensearch.ingest.ConfigurationUtils;
import org.opensearch.ingest.Processor;
import org.sesa.inference.v1.Chunking;
import org.sesa.opensearch.index.TargetMappings;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.util.ChunkingOption;
import org.sesa.opensearch.util.ProcessorConfigs;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

import static org.opensearch.ingest.ConfigurationUtils.newConfigurationException;

/**
 * Parses and validates a {@code sesa_encode} definition when the pipeline is created, so configuration
 * mistakes are reported by {@code PUT _ingest/pipeline} and not by the first bulk request.
 * {@code tag}, {@code description}, {@code if}, {@code ignore_failure} and {@code on_failure} are handled by OpenSearch.
 */
public final class SesaEncodeProcessorFactory implements Processor.Factory {

    // each option's key, then its default and limit where it has them
    public static final String FIELD_MAP = "field_map";
    public static final String SEPARATOR = "separator";
    public static final String BATCH_SIZE = "batch_size";
    public static final int DEFAULT_BATCH_SIZE = 32;
    public static final int MAX_BATCH_SIZE = 1024;
    public static final String TIMEOUT = "timeout";
    public static final String IGNORE_MISSING = "ignore_missing";
    public static final String TOP_K_CONCEPTS = "top_k_concepts";
    public static final String TOP_LABELS = "top_labels";
    /** The limit of both {@link #TOP_K_CONCEPTS} and {@link #TOP_LABELS}. */
    public static final int MAX_TOP_K = 1024;
    /**
     * Concepts kept per document (per text: for a chunked text, after pooling its windows) when the option is not
     * set, for {@code sesa_encode} and {@code sesa_text} fields alike; the shipped pipeline names the same value. Why
     * 128 and not the query's 32: with the concept branch's idf, a document vector of 128 concepts finds more of what
     * the query names; concepts alone through the cluster, 32 -> 128 (zero-shot ESCO space): SciFact 0.250 -> 0.312,
     * Cranfield 0.204 -> 0.221, ADI 0.444 -> 0.467, TIME 0.310 -> 0.346; the SciFact index grows by a third.
     */
    public static final int DEFAULT_TOP_K_CONCEPTS = 128;
    public static final String ALLOW_MODEL_CHANGE = "allow_model_change";
    /** Chunked encoding: {@code {"window_tokens": 0, "overlap_tokens": 32, "max_windows": 64}}; absent: off ({@link ChunkingOption}). */
    public static final String CHUNKING = ChunkingOption.CHUNKING;
    public static final String WINDOW_TOKENS = ChunkingOption.WINDOW_TOKENS;
    public static final String OVERLAP_TOKENS = ChunkingOption.OVERLAP_TOKENS;
    public static final String MAX_WINDOWS = ChunkingOption.MAX_WINDOWS;
    public static final int DEFAULT_OVERLAP_TOKENS = ChunkingOption.DEFAULT_OVERLAP_TOKENS;
    public static final int DEFAULT_MAX_WINDOWS = ChunkingOption.DEFAULT_MAX_WINDOWS;
    /** Limit of {@link #WINDOW_TOKENS} (the server clamps it to its passage window anyway). */
    public static final int MAX_WINDOW_TOKENS = ChunkingOption.MAX_WINDOW_TOKENS;
    /** Limit of {@link #MAX_WINDOWS}: every window is a vector in the document's nested field. */
    public static final int MAX_MAX_WINDOWS = ChunkingOption.MAX_MAX_WINDOWS;

    private final Supplier<InferenceClient> client;
    private final ModelMetaLookup modelMeta;
    private final TargetMappings targetMappings;

    /**
     * @param client         supplier, because ingest factories are built before the plugin's components
     * @param modelMeta      where the expected models of an index come from
     * @param targetMappings whether a document's index can hold the output fields ({@code TargetMappingCheck} on a node)
     */
    public SesaEncodeProcessorFactory(Supplier<InferenceClient> client, ModelMetaLookup modelMeta, TargetMappings targetMappings) {
        this.client = client;
        this.modelMeta = modelMeta;
        this.targetMappings = java.util.Objects.requireNonNull(targetMappings);
    }

    @Override
    public SesaEncodeProcessor create(Map<String, Processor.Factory> factories, String tag, String description, Map<String, Object> config)
        throws Exception {
        String type = SesaEncodeProcessor.TYPE;
        int batchSize = ConfigurationUtils.readIntProperty(type, tag, config, BATCH_SIZE, DEFAULT_BATCH_SIZE);
        if (batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
            throw newConfigurationException(type, tag, BATCH_SIZE, "must be between 1 and " + MAX_BATCH_SIZE + ", got " + batchSize);
        }
        List<FieldMapping> mappings = parseFieldMap(tag, ConfigurationUtils.readMap(type, tag, config, FIELD_MAP));
        String separator = ConfigurationUtils.readStringProperty(type, tag, config, SEPARATOR, "\n");

        TimeValue timeout = ProcessorConfigs.readTimeout(type, tag, config, TIMEOUT, "10s or 500ms");
        boolean ignoreMissing = ConfigurationUtils.readBooleanProperty(type, tag, config, IGNORE_MISSING, false);
        int topK = readRange(tag, config, TOP_K_CONCEPTS, DEFAULT_TOP_K_CONCEPTS);
        int topLabels = readRange(tag, config, TOP_LABELS, 0);
        boolean allowModelChange = ConfigurationUtils.readBooleanProperty(type, tag, config, ALLOW_MODEL_CHANGE, false);
        Chunking chunking = parseChunking(tag, config.remove(CHUNKING));

        return new SesaEncodeProcessor(
            tag,
            description,
            batchSize,
            mappings,
            separator,
            timeout,
            ignoreMissing,
            topK,
            topLabels,
            allowModelChange,
            chunking,
            client.get(),
            modelMeta,
            targetMappings
        );
    }

    /**
     * The {@code chunking} option, or null when absent. Every key is optional; unknown keys, non-integers and values out
     * of range are refused with what is allowed ({@link ChunkingOption}).
     */
    static Chunking parseChunking(String tag, Object raw) {
        return ChunkingOption.parse(raw, (property, message) -> newConfigurationException(SesaEncodeProcessor.TYPE, tag, property, message));
    }

    private static int readRange(String tag, Map<String, Object> config, String key, int defaultValue) {
        int v = ConfigurationUtils.readIntProperty(SesaEncodeProcessor.TYPE, tag, config, key, defaultValue);
        if (v < 0 || v > MAX_TOP_K) {
            throw newConfigurationException(SesaEncodeProcessor.TYPE, tag, key, "must be between 0 (server default) and " + MAX_TOP_K + ", got " + v);
        }
        return v;
    }

    private static List<FieldMapping> parseFieldMap(String tag, Map<String, Object> fieldMap) {
        String type = SesaEncodeProcessor.TYPE;
        if (fieldMap.isEmpty()) {
            throw newConfigurationException(type, tag, FIELD_MAP, "must map at least one source field to a target prefix, e.g. {\"title,text\": \"sesa\"}");
        }
        List<FieldMapping> out = new ArrayList<>();
        Set<String> prefixes = new HashSet<>();
        for (Map.Entry<String, Object> e : fieldMap.entrySet()) {
            Set<String> sources = new LinkedHashSet<>();
            for (String part : e.getKey().split(",", -1)) {
                String field = part.trim();
                if (field.isEmpty()) {
                    throw newConfigurationException(type, tag, FIELD_MAP, "key [" + e.getKey() + "] has an empty field name");
                }
                if (sources.add(field) == false) {
                    throw newConfigurationException(type, tag, FIELD_MAP, "key [" + e.getKey() + "] lists field [" + field + "] twice");
                }
            }
            if (!(e.getValue() instanceof String prefix)) {
                throw newConfigurationException(
                    type,
                    tag,
                    FIELD_MAP,
                    "value for [" + e.getKey() + "] must be a target prefix string (e.g. \"sesa\"), got " + describe(e.getValue())
                );
            }
            String p = prefix.trim();
            if (p.isEmpty() || p.equals(prefix) == false || p.chars().anyMatch(Character::isWhitespace)) {
                throw newConfigurationException(type, tag, FIELD_MAP, "target prefix [" + prefix + "] must be non-empty and contain no whitespace");
            }
            if (p.startsWith(".") || p.endsWith(".") || p.contains("..") || p.startsWith("_")) {
                throw newConfigurationException(
                    type,
                    tag,
                    FIELD_MAP,
                    "target prefix [" + prefix + "] must be a field path (no leading '_' or '.', no empty path elements)"
                );
            }
            if (prefixes.add(p) == false) {
                throw newConfigurationException(type, tag, FIELD_MAP, "target prefix [" + p + "] is used by more than one entry");
            }
            SesaFieldNames names = SesaFieldNames.forPrefix(p);
            for (String source : sources) {
                for (String target : names.all()) {
                    if (source.equals(target)) {
                        throw newConfigurationException(type, tag, FIELD_MAP, "source field [" + source + "] would be overwritten by the output of [" + p + "]");
                    }
                }
            }
            out.add(new FieldMapping(new ArrayList<>(sources), names));
        }
        return out;
    }

    private static String describe(Object value) {
        return value == null ? "null" : value.getClass().getSimpleName() + " [" + value + "]";
    }
}
