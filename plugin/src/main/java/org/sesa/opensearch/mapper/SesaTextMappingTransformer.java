package org.sesa.opensearch.mapper;

import org.opensearch.core.action.ActionListener;
import org.opensearch.index.mapper.MapperParsingException;
import org.opensearch.index.mapper.MappingTransformer;
import org.sesa.inference.v1.ConceptSpaceInfo;
import org.sesa.inference.v1.EncodeOptions;
import org.sesa.inference.v1.EncodeRequest;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.inference.v1.InfoResponse;
import org.sesa.inference.v1.ModelInfo;
import org.sesa.inference.v1.TextKind;
import org.sesa.opensearch.index.IndexModels;
import org.sesa.opensearch.index.MappingVerdict;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.mapper.MappingMaps.SesaTextField;
import org.sesa.opensearch.util.SesaConventions;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Adds the sibling fields of every {@code sesa_text} field of a mapping when an index, a mapping update or an index
 * template is created (OpenSearch runs mapping transformers on those requests before it parses the mapping), as
 * neural-search's semantic field adds its {@code _semantic_info} fields. For {@code body}, target prefix
 * {@code body_sesa}:
 *
 * <pre>
 * body_sesa_dense           knn_vector, dimension of the server's encoder (Info), method hnsw / lucene / cosinesimil
 * body_sesa_concepts        rank_features
 * body_sesa_concept_labels  keyword
 * body_sesa_model           object: dense, concepts (keyword)
 * body_sesa_truncated       boolean
 * body_sesa_status          keyword
 * body_sesa_chunks          nested {dense: knn_vector as body_sesa_dense, start, end: integer}   (with chunking)
 * body_sesa_coverage        float                                                               (with chunking)
 * </pre>
 *
 * and records the models the server encodes that field with in {@code _meta.sesa.models.body_sesa} (as the
 * {@code sesa-*} template does for {@code sesa}), so the ingest model guard and the search-time model check cover the
 * field. The dimension and the concept spaces come from the server's Info; the models from one probe Encode per concept
 * space (the concept model the server reports names the space), as ingest will compare them. A record already in the
 * request's {@code _meta} is kept (an index built with other models stays guarded).
 *
 * <p>Asynchronous: the request waits for Info and the probes on the plugin's thread pool, never on a network thread.
 * An inference server that cannot be reached, a concept space it does not serve, or a {@code sesa_text} field inside a
 * {@code nested} field fail the request with a mapping error that says so. A mapping without {@code sesa_text} fields
 * passes untouched and calls nothing.
 */
public final class SesaTextMappingTransformer implements MappingTransformer {

    /** Text of the probe Encode that learns the models the server encodes a concept space with. */
    static final String PROBE_TEXT = "sesa_text mapping probe";
    public static final String MODELS = "models";

    private final Supplier<InferenceClient> client;

    /** @param client supplier, because the node asks for transformers before the plugin's components exist */
    public SesaTextMappingTransformer(Supplier<InferenceClient> client) {
        this.client = client;
    }

    @Override
    public void transform(Map<String, Object> mapping, TransformContext context, ActionListener<Void> listener) {
        Map<String, SesaTextField> fields;
        try {
            fields = MappingMaps.sesaTextFields(MappingMaps.properties(mapping));
            if (fields.isEmpty()) {
                listener.onResponse(null);
                return;
            }
            validate(fields);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        InferenceClient inference;
        try {
            inference = client.get();
        } catch (Exception e) {
            listener.onFailure(unreachable(fields, e));
            return;
        }
        inference.info(inference.defaultTimeout(), new ActionListener<>() {
            @Override
            public void onResponse(InfoResponse info) {
                int dimension;
                List<String> spaces;
                try {
                    dimension = encoderDimension(info);
                    spaces = conceptSpaces(fields);
                    checkConceptSpaces(info, fields);
                } catch (Exception e) {
                    listener.onFailure(e);
                    return;
                }
                probe(inference, spaces, 0, new LinkedHashMap<>(), dimension, mapping, fields, listener);
            }

            @Override
            public void onFailure(Exception e) {
                listener.onFailure(unreachable(fields, e));
            }
        });
    }

    /** One probe Encode per concept space, one after the other, then the mapping is rewritten. */
    private void probe(
        InferenceClient inference,
        List<String> spaces,
        int next,
        Map<String, Map<String, String>> modelsBySpace,
        int dimension,
        Map<String, Object> mapping,
        Map<String, SesaTextField> fields,
        ActionListener<Void> listener
    ) {
        if (next == spaces.size()) {
            try {
                apply(mapping, fields, dimension, modelsBySpace);
            } catch (Exception e) {
                listener.onFailure(e);
                return;
            }
            listener.onResponse(null);
            return;
        }
        String space = spaces.get(next);
        EncodeRequest request = EncodeRequest.newBuilder()
            .addTexts(PROBE_TEXT)
            .setOptions(EncodeOptions.newBuilder().setKind(TextKind.TEXT_KIND_PASSAGE).setConceptSpace(space))
            .build();
        inference.encode(request, inference.defaultTimeout(), new ActionListener<>() {
            @Override
            public void onResponse(EncodeResponse response) {
                int probed = response.getEmbeddingsCount() == 1 ? response.getEmbeddings(0).getDenseCount() : 0;
                if (probed > 0 && probed != dimension) {
                    listener.onFailure(
                        new MapperParsingException(
                            String.format(
                                Locale.ROOT,
                                "%s: the inference server reports an encoder of dimension [%d] but encodes vectors of dimension [%d]",
                                describe(fields),
                                dimension,
                                probed
                            )
                        )
                    );
                    return;
                }
                modelsBySpace.put(space, IndexModels.of(response));
                probe(inference, spaces, next + 1, modelsBySpace, dimension, mapping, fields, listener);
            }

            @Override
            public void onFailure(Exception e) {
                listener.onFailure(
                    new MapperParsingException(
                        describe(fields)
                            + ": the inference server could not encode text"
                            + (space.isEmpty() ? "" : " in concept space [" + space + "]")
                            + " to learn its models: "
                            + e.getMessage(),
                        e
                    )
                );
            }
        });
    }

    /** Checks what can be checked without the server; a mapping error names the field. */
    static void validate(Map<String, SesaTextField> fields) {
        List<String> errors = new ArrayList<>();
        for (SesaTextField f : fields.values()) {
            if (f.inNested()) {
                errors.add(
                    SesaTextFieldMapper.CONTENT_TYPE + " field [" + f.path() + "] is inside a nested field, which is not supported: map it outside"
                );
            }
            Object space = f.config().get(SesaTextFieldMapper.CONCEPT_SPACE);
            if (space != null || f.config().containsKey(SesaTextFieldMapper.CONCEPT_SPACE)) {
                try {
                    SesaTextFieldMapper.parseConceptSpace(f.path(), space);
                } catch (MapperParsingException e) {
                    errors.add(e.getMessage());
                }
            }
            if (f.config().containsKey(SesaTextFieldMapper.CHUNKING)) {
                try {
                    SesaTextFieldMapper.parseChunking(f.path(), f.config().get(SesaTextFieldMapper.CHUNKING));
                } catch (MapperParsingException e) {
                    errors.add(e.getMessage());
                }
            }
        }
        if (errors.isEmpty() == false) {
            throw new MapperParsingException(String.join("; ", errors));
        }
    }

    private static List<String> conceptSpaces(Map<String, SesaTextField> fields) {
        Set<String> spaces = new LinkedHashSet<>();
        for (SesaTextField f : fields.values()) {
            spaces.add(f.conceptSpace());
        }
        return new ArrayList<>(spaces);
    }

    /** The encoder's dimension from Info; a mapping error when the server reports none. */
    static int encoderDimension(InfoResponse info) {
        for (ModelInfo m : info.getModelsList()) {
            if ("encoder".equals(m.getRole()) && m.getDimension() > 0) {
                return m.getDimension();
            }
        }
        throw new MapperParsingException(
            "the inference server (version [" + info.getServerVersion() + "]) reports no encoder with a dimension in its Info, so the "
                + SesaTextFieldMapper.CONTENT_TYPE
                + " vector field cannot be mapped"
        );
    }

    /**
     * Every named concept space must be one the server serves, when the server lists them ({@code concept_spaces},
     * or its one {@code concept_space}); a server that lists none is asked by the probe itself.
     */
    static void checkConceptSpaces(InfoResponse info, Map<String, SesaTextField> fields) {
        Set<String> served = new LinkedHashSet<>();
        for (ConceptSpaceInfo s : info.getConceptSpacesList()) {
            served.add(s.getName());
        }
        if (served.isEmpty() && info.hasConceptSpace() && info.getConceptSpace().getName().isEmpty() == false) {
            served.add(info.getConceptSpace().getName());
        }
        if (served.isEmpty()) {
            return;
        }
        List<String> errors = new ArrayList<>();
        for (SesaTextField f : fields.values()) {
            String space = f.conceptSpace();
            if (space.isEmpty() == false && served.contains(space) == false) {
                errors.add(
                    "["
                        + SesaTextFieldMapper.CONCEPT_SPACE
                        + "] of "
                        + SesaTextFieldMapper.CONTENT_TYPE
                        + " field ["
                        + f.path()
                        + "] is ["
                        + space
                        + "], which the inference server does not serve; it serves "
                        + served
                );
            }
        }
        if (errors.isEmpty() == false) {
            throw new MapperParsingException(String.join("; ", errors));
        }
    }

    /** Adds the siblings of every field and the models record. */
    @SuppressWarnings("unchecked")
    static void apply(Map<String, Object> mapping, Map<String, SesaTextField> fields, int dimension, Map<String, Map<String, String>> modelsBySpace) {
        Map<String, Object> root = MappingMaps.root(mapping);
        Map<String, Object> meta = root.get(MappingMaps.META) instanceof Map<?, ?> m
            ? new LinkedHashMap<>((Map<String, Object>) m)
            : new LinkedHashMap<>();
        String metaKey = SesaConventions.get().indexMetaKey();
        Map<String, Object> sesa = meta.get(metaKey) instanceof Map<?, ?> s ? new LinkedHashMap<>((Map<String, Object>) s) : new LinkedHashMap<>();
        Map<String, Object> models = sesa.get(MODELS) instanceof Map<?, ?> mm ? new LinkedHashMap<>((Map<String, Object>) mm) : new LinkedHashMap<>();
        for (SesaTextField f : fields.values()) {
            f.parentProperties().putAll(siblings(SesaTextFieldMapper.targetPrefix(f.name()), dimension, f.chunking() != null));
            Map<String, String> recorded = modelsBySpace.get(f.conceptSpace());
            if (recorded != null) {
                models.putIfAbsent(SesaTextFieldMapper.targetPrefix(f.path()), new LinkedHashMap<>(recorded));
            }
        }
        sesa.put(MODELS, models);
        meta.put(metaKey, sesa);
        root.put(MappingMaps.META, meta);
    }

    /** The sibling fields of target prefix {@code prefix} without chunking, in the order of {@link SesaFieldNames#all()}. */
    public static Map<String, Object> siblings(String prefix, int dimension) {
        return siblings(prefix, dimension, false);
    }

    /**
     * The sibling fields of target prefix {@code prefix}, in the order of {@link SesaFieldNames#all()}; with
     * {@code chunks} also those of a chunked encoding, as the {@code sesa-*} template maps them: {@code <prefix>_chunks}
     * ({@code nested}: {@code dense} a {@code knn_vector} like {@code <prefix>_dense}, {@code start} and {@code end}
     * {@code integer}) and {@code <prefix>_coverage} ({@code float}).
     */
    public static Map<String, Object> siblings(String prefix, int dimension, boolean chunks) {
        SesaFieldNames names = SesaFieldNames.forPrefix(prefix);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put(names.dense(), denseVector(dimension));
        out.put(names.concepts(), type(MappingVerdict.RANK_FEATURES));
        out.put(names.conceptLabels(), type(MappingVerdict.KEYWORD));
        Map<String, Object> modelProperties = new LinkedHashMap<>();
        modelProperties.put(IndexModels.DENSE, type(MappingVerdict.KEYWORD));
        modelProperties.put(IndexModels.CONCEPTS, type(MappingVerdict.KEYWORD));
        out.put(names.model(), new LinkedHashMap<>(Map.of(MappingMaps.PROPERTIES, modelProperties)));
        out.put(names.truncated(), type(MappingVerdict.BOOLEAN));
        out.put(names.status(), type(MappingVerdict.KEYWORD));
        if (chunks) {
            Map<String, Object> window = new LinkedHashMap<>();
            window.put("dense", denseVector(dimension));
            window.put("start", type(MappingVerdict.INTEGER));
            window.put("end", type(MappingVerdict.INTEGER));
            Map<String, Object> nested = type(MappingMaps.NESTED);
            nested.put(MappingMaps.PROPERTIES, window);
            out.put(names.chunks(), nested);
            out.put(names.coverage(), type(MappingVerdict.FLOAT));
        }
        return out;
    }

    /** A {@code knn_vector} of {@code dimension}: hnsw, lucene, cosinesimil, m 16, ef_construction 128. */
    private static Map<String, Object> denseVector(int dimension) {
        Map<String, Object> parameters = new LinkedHashMap<>();
        parameters.put("m", 16);
        parameters.put("ef_construction", 128);
        Map<String, Object> method = new LinkedHashMap<>();
        method.put("name", "hnsw");
        method.put("engine", MappingVerdict.LUCENE);
        method.put("space_type", "cosinesimil");
        method.put("parameters", parameters);
        Map<String, Object> dense = new LinkedHashMap<>();
        dense.put(MappingMaps.TYPE, MappingVerdict.KNN_VECTOR);
        dense.put("dimension", dimension);
        dense.put("method", method);
        return dense;
    }

    private static Map<String, Object> type(String type) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(MappingMaps.TYPE, type);
        return m;
    }

    private static String describe(Map<String, SesaTextField> fields) {
        return SesaTextFieldMapper.CONTENT_TYPE + " field" + (fields.size() > 1 ? "s " : " ") + fields.keySet();
    }

    private static MapperParsingException unreachable(Map<String, SesaTextField> fields, Exception e) {
        return new MapperParsingException(
            describe(fields)
                + ": cannot map the SESA fields without the inference server, which reports the vector dimension and the models ("
                + e.getMessage()
                + "); start it (sesa up) or point sesa.inference.endpoints at it, then send the mapping again",
            e
        );
    }
}
