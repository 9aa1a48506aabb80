package org.sesa.opensearch.ingest;

import org.opensearch.ingest.AbstractBatchingSystemProcessor;
import org.sesa.inference.v1.Chunking;
import org.sesa.inference.v1.EncodeOptions;
import org.sesa.inference.v1.TextKind;
import org.sesa.opensearch.index.TargetMappings;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.mapper.MappingMaps;
import org.sesa.opensearch.mapper.MappingMaps.SesaTextField;
import org.sesa.opensearch.mapper.SesaTextFieldMapper;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

import static org.opensearch.plugins.IngestPlugin.SystemIngestPipelineConfigKeys.INDEX_MAPPINGS;
import static org.opensearch.plugins.IngestPlugin.SystemIngestPipelineConfigKeys.INDEX_TEMPLATE_MAPPINGS;

/**
 * Makes the {@code sesa_text} system ingest processor of an index from its mapping: OpenSearch asks it once per index
 * (and mapping version), or, for an index a bulk request is about to create, from the mappings of the index templates
 * that match its name. No {@code sesa_text} field, no processor ({@code null}): the index gets no system pipeline from
 * this plugin. Users cannot name this processor in a pipeline of their own.
 */
public final class SesaTextIngestProcessorFactory extends AbstractBatchingSystemProcessor.Factory {

    /** Documents per Encode call, as {@code sesa_encode}'s default. */
    public static final int BATCH_SIZE = SesaEncodeProcessorFactory.DEFAULT_BATCH_SIZE;
    static final String SEPARATOR = "\n";

    private final Supplier<InferenceClient> client;
    private final ModelMetaLookup modelMeta;
    private final TargetMappings targetMappings;

    /**
     * @param client         supplier, because ingest factories are built before the plugin's components
     * @param modelMeta      the models an index records ({@code _meta.sesa.models.<field>_sesa})
     * @param targetMappings whether a document's index can hold the output fields
     */
    public SesaTextIngestProcessorFactory(Supplier<InferenceClient> client, ModelMetaLookup modelMeta, TargetMappings targetMappings) {
        super(SesaTextIngestProcessor.TYPE);
        this.client = Objects.requireNonNull(client);
        this.modelMeta = Objects.requireNonNull(modelMeta);
        this.targetMappings = Objects.requireNonNull(targetMappings);
    }

    @Override
    @SuppressWarnings("unchecked")
    protected SesaTextIngestProcessor newProcessor(String tag, String description, Map<String, Object> config) {
        Map<String, Object> properties;
        if (config.get(INDEX_MAPPINGS) instanceof Map<?, ?> index) {
            properties = MappingMaps.properties((Map<String, Object>) index);
        } else if (config.get(INDEX_TEMPLATE_MAPPINGS) instanceof List<?> templates) {
            List<Map<String, Object>> mappings = new ArrayList<>();
            for (Object t : templates) {
                if (t instanceof Map<?, ?> m) {
                    mappings.add((Map<String, Object>) m);
                }
            }
            properties = MappingMaps.mergedProperties(mappings);
        } else {
            return null;
        }
        Map<String, String> fields = new LinkedHashMap<>();
        // one encoder per concept space and chunking: the fields of one share one Encode call per sub-batch
        Map<EncodeKey, List<FieldMapping>> byEncoding = new LinkedHashMap<>();
        for (SesaTextField f : MappingMaps.sesaTextFields(properties).values()) {
            if (f.inNested() == false) { // the mapping transformer refuses those; one made otherwise gets no vectors
                fields.put(f.path(), f.conceptSpace());
                SesaFieldNames names = SesaFieldNames.forPrefix(SesaTextFieldMapper.targetPrefix(f.path()));
                byEncoding.computeIfAbsent(new EncodeKey(f.conceptSpace(), f.chunking()), k -> new ArrayList<>())
                    .add(new FieldMapping(List.of(f.path()), names));
            }
        }
        if (fields.isEmpty()) {
            return null;
        }
        InferenceClient inference = client.get();
        List<SesaEncoder> encoders = new ArrayList<>();
        for (Map.Entry<EncodeKey, List<FieldMapping>> encoding : byEncoding.entrySet()) {
            EncodeOptions.Builder options = EncodeOptions.newBuilder()
                .setKind(TextKind.TEXT_KIND_PASSAGE)
                .setTopKConcepts(SesaEncodeProcessorFactory.DEFAULT_TOP_K_CONCEPTS)
                .setConceptSpace(encoding.getKey().conceptSpace());
            if (encoding.getKey().chunking() != null) {
                options.setChunking(encoding.getKey().chunking());
            }
            SesaEncoder.Config encoderConfig = new SesaEncoder.Config(
                SesaTextIngestProcessor.TYPE,
                encoding.getValue(),
                SEPARATOR,
                null,
                true,
                true,
                options.build(),
                false,
                SesaTextIngestProcessorFactory::mappingFix,
                "reindex into a new index created with the sesa_text mapping while the server serves these models"
            );
            encoders.add(new SesaEncoder(encoderConfig, inference, modelMeta, targetMappings));
        }
        String desc = description != null
            ? description
            : "encodes the sesa_text fields " + fields.keySet() + " into their SESA vectors (added by the opensearch-sesa plugin)";
        return new SesaTextIngestProcessor(tag, desc, BATCH_SIZE, encoders, fields);
    }

    /** How a field's text is encoded: its concept space (empty: the server's default) and chunking (null: off). */
    private record EncodeKey(String conceptSpace, Chunking chunking) {}

    /** What to do when an index with sesa_text fields cannot hold their output: its siblings were changed. */
    static String mappingFix(String index) {
        return "the sesa_text mapping adds the <field>"
            + SesaTextFieldMapper.TARGET_PREFIX_SUFFIX
            + "_* fields when the index or template is created (do not map them yourself); create index ["
            + index
            + "] anew from its sesa_text mapping while the inference server is up, and reindex";
    }
}
