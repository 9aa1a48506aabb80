package org.sesa.opensearch.ingest;

import org.opensearch.OpenSearchStatusException;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.ingest.AbstractBatchingProcessor;
import org.opensearch.ingest.IngestDocument;
import org.opensearch.ingest.IngestDocumentWrapper;
import org.sesa.inference.v1.Concept;
import org.sesa.inference.v1.Embedding;
import org.sesa.inference.v1.EncodeOptions;
import org.sesa.inference.v1.EncodeRequest;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.inference.v1.ModelRef;
import org.sesa.inference.v1.TextKind;
import org.sesa.opensearch.index.IndexModels;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.util.AsyncOnly;
import org.sesa.opensearch.util.SesaConventions;
import org.sesa.opensearch.util.SesaFieldNames;
import org.sesa.opensearch.util.Texts;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiConsumer;
import java.util.function.Consumer;

/**
 * {@code sesa_encode}: adds a dense vector, SESA concept weights and labels to each document, one Encode
 * call per sub-batch. A document leaves this processor either with all its vectors, or with
 * {@code <prefix>_status: missing_source} (only under {@code ignore_missing}), or failed with a reason;
 * never silently without vectors.
 */
public final class SesaEncodeProcessor extends AbstractBatchingProcessor {

    public static final String TYPE = "sesa_encode";

    private final List<FieldMapping> mappings;
    private final String separator;
    private final TimeValue timeout; // null: node setting at call time
    private final boolean ignoreMissing;
    /** What every Encode call of this processor asks for: passage encoding, with its concept and label counts. */
    private final EncodeOptions options;
    private final boolean allowModelChange;
    private final InferenceClient client;
    private final ModelMetaLookup modelMeta;
    private final String statusEncoded;
    private final String statusMissing;

    SesaEncodeProcessor(
        String tag,
        String description,
        int batchSize,
        List<FieldMapping> mappings,
        String separator,
        TimeValue timeout,
        boolean ignoreMissing,
        int topKConcepts,
        int topLabels,
        boolean allowModelChange,
        InferenceClient client,
        ModelMetaLookup modelMeta
    ) {
        super(tag, description, batchSize);
        this.mappings = List.copyOf(mappings);
        this.separator = separator;
        this.timeout = timeout;
        this.ignoreMissing = ignoreMissing;
        this.options = EncodeOptions.newBuilder().setKind(TextKind.TEXT_KIND_PASSAGE).setTopKConcepts(topKConcepts).setTopLabels(topLabels).build();
        this.allowModelChange = allowModelChange;
        this.client = Objects.requireNonNull(client);
        this.modelMeta = Objects.requireNonNull(modelMeta);
        SesaConventions c = SesaConventions.get();
        this.statusEncoded = c.statusValue("encoded");
        this.statusMissing = c.statusValue("missing_source");
    }

    @Override
    public String getType() {
        return TYPE;
    }

    public int getBatchSize() {
        return batchSize;
    }

    public TimeValue getTimeout() {
        return timeout;
    }

    public boolean isIgnoreMissing() {
        return ignoreMissing;
    }

    public List<FieldMapping> getMappings() {
        return mappings;
    }

    @Override
    public void execute(IngestDocument ingestDocument, BiConsumer<IngestDocument, Exception> handler) {
        subBatchExecute(List.of(new IngestDocumentWrapper(0, 0, ingestDocument, null)), results -> {
            IngestDocumentWrapper w = results.get(0);
            handler.accept(w.getException() == null ? w.getIngestDocument() : null, w.getException());
        });
    }

    /** The synchronous path would block an ingest thread on the network; OpenSearch uses the async one. */
    @Override
    public IngestDocument execute(IngestDocument ingestDocument) {
        throw AsyncOnly.syncCall(TYPE, "execute(IngestDocument, BiConsumer)");
    }

    /**
     * Same as the base class, but hands results back in input order. The base class concatenates
     * sub-batches in completion order, and OpenSearch 3.5's bulk action places ingest failures in the
     * order they are reported, so an early-finishing later sub-batch would shift failures to the wrong
     * positions of the bulk response.
     */
    @Override
    public void batchExecute(List<IngestDocumentWrapper> wrappers, Consumer<List<IngestDocumentWrapper>> handler) {
        if (wrappers.size() <= batchSize) {
            super.batchExecute(wrappers, handler);
            return;
        }
        Map<Long, Integer> position = new HashMap<>();
        for (int i = 0; i < wrappers.size(); i++) {
            position.put(key(wrappers.get(i)), i);
        }
        super.batchExecute(wrappers, results -> {
            List<IngestDocumentWrapper> ordered = new ArrayList<>(results);
            ordered.sort(Comparator.comparingInt(w -> position.getOrDefault(key(w), Integer.MAX_VALUE)));
            handler.accept(ordered);
        });
    }

    private static long key(IngestDocumentWrapper w) {
        return ((long) w.getSlot() << 32) | (w.getChildSlot() & 0xffffffffL);
    }

    @Override
    protected void subBatchExecute(List<IngestDocumentWrapper> wrappers, Consumer<List<IngestDocumentWrapper>> handler) {
        if (wrappers.isEmpty()) {
            handler.accept(List.of());
            return;
        }
        Batch batch = new Batch(wrappers);
        batch.prepare();
        if (batch.texts.isEmpty()) {
            handler.accept(batch.finish(null));
            return;
        }
        EncodeRequest request = EncodeRequest.newBuilder().addAllTexts(batch.texts).setOptions(options).build();
        // Not ActionListener.wrap: if the handler threw in onResponse, wrap would run onFailure and call it a second
        // time for the same documents. The handler is called exactly once, outside the try (as in
        // AbstractSesaResponseProcessor#respond); a failure while applying the response fails the documents instead.
        client.encode(request, timeout, new ActionListener<>() {
            @Override
            public void onResponse(EncodeResponse response) {
                List<IngestDocumentWrapper> out;
                try {
                    out = batch.apply(response);
                } catch (Exception e) {
                    batch.failAllPending(
                        new OpenSearchStatusException(
                            "[" + TYPE + "] failed to apply the inference response: " + e.getMessage(),
                            RestStatus.INTERNAL_SERVER_ERROR,
                            e
                        )
                    );
                    out = batch.finish(null);
                }
                handler.accept(out);
            }

            @Override
            public void onFailure(Exception e) {
                batch.failAllPending(e);
                handler.accept(batch.finish(null));
            }
        });
    }

    /** Work and results for one sub-batch; one instance per Encode call. */
    private final class Batch {
        private final List<IngestDocumentWrapper> in;
        private final Exception[] errors;
        /** Per document and mapping: index into {@link #texts}, or -1 when missing/not sent. */
        private final int[][] textIndex;
        private final boolean[][] missing;
        final List<String> texts = new ArrayList<>();

        Batch(List<IngestDocumentWrapper> in) {
            this.in = in;
            this.errors = new Exception[in.size()];
            this.textIndex = new int[in.size()][mappings.size()];
            this.missing = new boolean[in.size()][mappings.size()];
        }

        /** Extracts texts; documents with bad or (not ignored) missing input fail here, before any call. */
        void prepare() {
            for (int d = 0; d < in.size(); d++) {
                IngestDocumentWrapper w = in.get(d);
                if (w.getException() != null || w.getIngestDocument() == null) {
                    errors[d] = w.getException(); // already failed upstream: pass through untouched
                    java.util.Arrays.fill(textIndex[d], -1);
                    continue;
                }
                List<String> docTexts = new ArrayList<>(mappings.size());
                try {
                    for (int m = 0; m < mappings.size(); m++) {
                        String text = extract(w.getIngestDocument(), mappings.get(m));
                        if (text == null) {
                            missing[d][m] = true;
                        }
                        docTexts.add(text);
                    }
                } catch (Exception e) {
                    errors[d] = e;
                    java.util.Arrays.fill(textIndex[d], -1);
                    continue;
                }
                for (int m = 0; m < mappings.size(); m++) {
                    String text = docTexts.get(m);
                    if (text == null) {
                        textIndex[d][m] = -1;
                    } else {
                        textIndex[d][m] = texts.size();
                        texts.add(text);
                    }
                }
            }
        }

        /** Joined text of the mapping's source fields, or null when all are absent/null/blank (and that is allowed). */
        private String extract(IngestDocument doc, FieldMapping mapping) {
            StringBuilder sb = new StringBuilder();
            for (String field : mapping.sourceFields()) {
                Object value = doc.hasField(field) ? doc.getFieldValue(field, Object.class) : null;
                if (value == null) {
                    continue;
                }
                if (value instanceof String s) {
                    if (Texts.isBlank(s)) {
                        continue;
                    }
                    if (sb.length() > 0) {
                        sb.append(separator);
                    }
                    sb.append(s);
                } else {
                    throw new IllegalArgumentException(
                        String.format(
                            Locale.ROOT,
                            "[%s] field [%s] of document [%s] must be a string to be encoded, found %s",
                            TYPE,
                            field,
                            docId(doc),
                            value.getClass().getSimpleName()
                        )
                    );
                }
            }
            if (sb.length() > 0) {
                return sb.toString();
            }
            if (ignoreMissing) {
                return null;
            }
            throw new IllegalArgumentException(
                String.format(
                    Locale.ROOT,
                    "[%s] source field%s %s of document [%s] missing, null or blank; cannot encode target [%s] "
                        + "(set ignore_missing: true to index such documents without vectors)",
                    TYPE,
                    mapping.sourceFields().size() > 1 ? "s" : "",
                    mapping.sourceFields(),
                    docId(doc),
                    mapping.prefix()
                )
            );
        }

        void failAllPending(Exception e) {
            for (int d = 0; d < in.size(); d++) {
                if (errors[d] == null && sentAny(d)) {
                    errors[d] = e;
                }
            }
        }

        private boolean sentAny(int d) {
            for (int idx : textIndex[d]) {
                if (idx >= 0) {
                    return true;
                }
            }
            return false;
        }

        List<IngestDocumentWrapper> apply(EncodeResponse response) {
            if (response.getEmbeddingsCount() != texts.size()) {
                failAllPending(
                    new OpenSearchStatusException(
                        "sesa inference server returned " + response.getEmbeddingsCount() + " embeddings for " + texts.size() + " texts",
                        RestStatus.BAD_GATEWAY
                    )
                );
                return finish(null);
            }
            return finish(response);
        }

        /** Writes outputs for documents that have no error and builds the result list (same order as the input). */
        List<IngestDocumentWrapper> finish(EncodeResponse response) {
            Map<String, String> models = response == null ? null : modelsOf(response);
            List<IngestDocumentWrapper> out = new ArrayList<>(in.size());
            for (int d = 0; d < in.size(); d++) {
                IngestDocumentWrapper w = in.get(d);
                IngestDocument doc = w.getIngestDocument();
                if (errors[d] == null) {
                    try {
                        check(doc, d, response, models);
                        write(doc, d, response, models);
                    } catch (Exception e) {
                        errors[d] = e;
                    }
                }
                if (errors[d] == w.getException()) {
                    out.add(w);
                } else {
                    out.add(new IngestDocumentWrapper(w.getSlot(), w.getChildSlot(), doc, errors[d]));
                }
            }
            return out;
        }

        /** All checks before the first write, so a failing document is never half-written. */
        private void check(IngestDocument doc, int d, EncodeResponse response, Map<String, String> models) {
            for (int m = 0; m < mappings.size(); m++) {
                int idx = textIndex[d][m];
                if (idx < 0) {
                    continue;
                }
                FieldMapping mapping = mappings.get(m);
                Embedding e = response.getEmbeddings(idx);
                if (e.hasError()) {
                    throw new OpenSearchStatusException(
                        String.format(
                            Locale.ROOT,
                            "[%s] inference server rejected the text of %s for target [%s] in document [%s]: %s: %s",
                            TYPE,
                            mapping.sourceFields(),
                            mapping.prefix(),
                            docId(doc),
                            e.getError().getCode(),
                            e.getError().getMessage()
                        ),
                        RestStatus.BAD_REQUEST
                    );
                }
                if (e.getDenseCount() == 0) {
                    throw new OpenSearchStatusException(
                        "[" + TYPE + "] inference server returned no dense vector for target [" + mapping.prefix() + "] in document [" + docId(doc) + "]",
                        RestStatus.BAD_GATEWAY
                    );
                }
                if (allowModelChange == false) {
                    Object expected = modelMeta.expectedModels(indexOf(doc), mapping.prefix());
                    if (expected != null && modelsMatch(expected, models) == false) {
                        throw new IllegalStateException(
                            String.format(
                                Locale.ROOT,
                                "[%s] index [%s] was built with models %s for target [%s] (mapping _meta.%s.models.%s) but the inference "
                                    + "server now uses %s; reindex into a new index, or set allow_model_change: true",
                                TYPE,
                                indexOf(doc),
                                expected,
                                mapping.prefix(),
                                SesaConventions.get().indexMetaKey(),
                                mapping.prefix(),
                                models
                            )
                        );
                    }
                }
            }
        }

        private void write(IngestDocument doc, int d, EncodeResponse response, Map<String, String> models) {
            for (int m = 0; m < mappings.size(); m++) {
                SesaFieldNames names = mappings.get(m).target();
                int idx = textIndex[d][m];
                if (idx < 0) {
                    if (missing[d][m]) {
                        // ignore_missing: no vectors, and no stale ones from an earlier version of the document.
                        for (String f : names.all()) {
                            if (doc.hasField(f)) {
                                doc.removeField(f);
                            }
                        }
                        doc.setFieldValue(names.status(), statusMissing);
                    }
                    continue;
                }
                Embedding e = response.getEmbeddings(idx);
                doc.setFieldValue(names.dense(), new ArrayList<>(e.getDenseList()));
                Map<String, Object> concepts = new LinkedHashMap<>();
                for (Concept c : e.getConceptsList()) {
                    // rank_features only accepts positive weights.
                    if (c.getWeight() > 0 && c.getKey().isEmpty() == false) {
                        concepts.put(c.getKey(), c.getWeight());
                    }
                }
                doc.setFieldValue(names.concepts(), concepts);
                doc.setFieldValue(names.conceptLabels(), new ArrayList<>(e.getTopLabelsList()));
                doc.setFieldValue(names.model(), new LinkedHashMap<>(models));
                doc.setFieldValue(names.truncated(), e.getTruncated());
                doc.setFieldValue(names.status(), statusEncoded);
            }
        }
    }

    /** {@code {"dense": "id@version", "concepts": "id@version"}}: what {@code <prefix>_model} stores and _meta is compared with. */
    static Map<String, String> modelsOf(EncodeResponse response) {
        return IndexModels.of(response);
    }

    static String ref(ModelRef ref) {
        return IndexModels.ref(ref);
    }

    /**
     * A string in _meta names the dense model; a map is compared key by key (only the keys it has); anything else
     * matches no server. The same rule {@code sesa_query} checks a query's encoding by ({@link IndexModels}).
     */
    static boolean modelsMatch(Object expected, Map<String, String> actual) {
        try {
            return IndexModels.parse(expected).matches(actual);
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private static String indexOf(IngestDocument doc) {
        Object index = doc.getSourceAndMetadata().get(IngestDocument.Metadata.INDEX.getFieldName());
        return index == null ? null : index.toString();
    }

    private static String docId(IngestDocument doc) {
        Object id = doc.getSourceAndMetadata().get(IngestDocument.Metadata.ID.getFieldName());
        return id == null ? "_none_" : id.toString();
    }
}
