package org.sesa.opensearch.ingest;

import org.opensearch.OpenSearchStatusException;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.ingest.IngestDocument;
import org.opensearch.ingest.IngestDocumentWrapper;
import org.sesa.inference.v1.Chunking;
import org.sesa.inference.v1.Concept;
import org.sesa.inference.v1.Embedding;
import org.sesa.inference.v1.EncodeOptions;
import org.sesa.inference.v1.EncodeRequest;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.inference.v1.Window;
import org.sesa.opensearch.index.IndexModels;
import org.sesa.opensearch.index.MappingVerdict;
import org.sesa.opensearch.index.TargetMappings;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.util.ChunkingOption;
import org.sesa.opensearch.util.SesaConventions;
import org.sesa.opensearch.util.SesaFieldNames;
import org.sesa.opensearch.util.Texts;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The encoding machinery that {@code sesa_encode} and the {@code sesa_text} system processor share: one Encode call
 * per sub-batch for all its documents and field mappings, then the checks and the writes. A document leaves it either
 * with all its vectors, or with {@code <prefix>_status: missing_source} (only when missing text is allowed), or failed
 * with a reason; never silently without vectors, and never written into an index that cannot hold the output.
 *
 * <p>Per document, in this order, before anything is written:
 * <ol>
 *   <li>the target index must map every output field as SESA needs ({@link TargetMappings}, {@link MappingVerdict});
 *       a document whose index does not fails with a 400 that names each field, what it is and what it must be, and
 *       the fix; its text is not even sent; nor is it when the index records another chunking than this encoder's
 *       ({@code _meta.sesa.chunking.<prefix>}, unless model changes are allowed);</li>
 *   <li>its text is extracted (missing or non-string text fails it, unless missing text is allowed);</li>
 *   <li>after the call: the server's item error, an empty vector, a vector of another dimension than the index maps,
 *       and models other than the index records ({@code _meta.sesa.models.<prefix>}, unless model changes are
 *       allowed) each fail the document.</li>
 * </ol>
 */
public final class SesaEncoder {

    /**
     * What one encoder does.
     *
     * @param type             the processor's name, which every message starts with
     * @param mappings         source field(s) to target prefix
     * @param separator        joins several source values
     * @param timeout          deadline per call; null: the node's {@code sesa.inference.ingest_timeout} at call time
     * @param ignoreMissing    whether a document without text is indexed without vectors ({@code missing_source})
     * @param joinLists        whether a list of strings is text (joined with the separator), as a text field takes it
     * @param options          what every Encode call asks for
     * @param allowModelChange whether the model check is skipped
     * @param mappingFix       the fix to suggest when an index cannot hold the output, given the index name
     * @param modelChangeFix   the fix to suggest when the server's models differ from the index's record
     */
    public record Config(
        String type,
        List<FieldMapping> mappings,
        String separator,
        TimeValue timeout,
        boolean ignoreMissing,
        boolean joinLists,
        EncodeOptions options,
        boolean allowModelChange,
        Function<String, String> mappingFix,
        String modelChangeFix
    ) {
        public Config {
            mappings = List.copyOf(mappings);
            Objects.requireNonNull(type);
            Objects.requireNonNull(separator);
            Objects.requireNonNull(options);
            Objects.requireNonNull(mappingFix);
            Objects.requireNonNull(modelChangeFix);
        }
    }

    private final Config config;
    private final InferenceClient client;
    private final ModelMetaLookup modelMeta;
    private final TargetMappings targetMappings;
    private final String statusEncoded;
    private final String statusMissing;

    public SesaEncoder(Config config, InferenceClient client, ModelMetaLookup modelMeta, TargetMappings targetMappings) {
        this.config = Objects.requireNonNull(config);
        this.client = Objects.requireNonNull(client);
        this.modelMeta = Objects.requireNonNull(modelMeta);
        this.targetMappings = Objects.requireNonNull(targetMappings);
        SesaConventions c = SesaConventions.get();
        this.statusEncoded = c.statusValue("encoded");
        this.statusMissing = c.statusValue("missing_source");
    }

    public Config config() {
        return config;
    }

    /**
     * Runs {@code subBatch} on one document and hands the outcome to {@code handler} (what a processor's
     * {@code execute(doc, handler)} does with the batch path).
     */
    public static void executeOne(
        IngestDocument doc,
        BiConsumer<IngestDocument, Exception> handler,
        BiConsumer<List<IngestDocumentWrapper>, Consumer<List<IngestDocumentWrapper>>> subBatch
    ) {
        subBatch.accept(List.of(new IngestDocumentWrapper(0, 0, doc, null)), results -> {
            IngestDocumentWrapper w = results.get(0);
            handler.accept(w.getException() == null ? w.getIngestDocument() : null, w.getException());
        });
    }

    /**
     * {@code batchExecute} of {@link org.opensearch.ingest.AbstractBatchingProcessor} (passed as {@code base}), but
     * with the results in input order. The base class concatenates sub-batches in completion order, and OpenSearch 3.5's
     * bulk action places ingest failures in the order they are reported, so an early-finishing later sub-batch would
     * shift failures to the wrong positions of the bulk response.
     */
    public static void inInputOrder(
        List<IngestDocumentWrapper> wrappers,
        int batchSize,
        Consumer<List<IngestDocumentWrapper>> handler,
        BiConsumer<List<IngestDocumentWrapper>, Consumer<List<IngestDocumentWrapper>>> base
    ) {
        if (wrappers.size() <= batchSize) {
            base.accept(wrappers, handler);
            return;
        }
        Map<Long, Integer> position = new HashMap<>();
        for (int i = 0; i < wrappers.size(); i++) {
            position.put(key(wrappers.get(i)), i);
        }
        base.accept(wrappers, results -> {
            List<IngestDocumentWrapper> ordered = new ArrayList<>(results);
            ordered.sort(Comparator.comparingInt(w -> position.getOrDefault(key(w), Integer.MAX_VALUE)));
            handler.accept(ordered);
        });
    }

    private static long key(IngestDocumentWrapper w) {
        return ((long) w.getSlot() << 32) | (w.getChildSlot() & 0xffffffffL);
    }

    /**
     * Encodes one sub-batch (one Encode call at most) and hands {@code handler} every document, in input order, exactly
     * once. Documents that arrive failed pass through untouched.
     */
    public void encode(List<IngestDocumentWrapper> wrappers, Consumer<List<IngestDocumentWrapper>> handler) {
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
        EncodeRequest request = EncodeRequest.newBuilder().addAllTexts(batch.texts).setOptions(config.options()).build();
        // Not ActionListener.wrap: if the handler threw in onResponse, wrap would run onFailure and call it a second
        // time for the same documents. The handler is called exactly once, outside the try (as in
        // AbstractSesaResponseProcessor#respond); a failure while applying the response fails the documents instead.
        TimeValue deadline = config.timeout() != null ? config.timeout() : client.ingestTimeout();
        client.encode(request, deadline, new ActionListener<>() {
            @Override
            public void onResponse(EncodeResponse response) {
                List<IngestDocumentWrapper> out;
                try {
                    out = batch.apply(response);
                } catch (Exception e) {
                    batch.failAllPending(
                        new OpenSearchStatusException(
                            "[" + config.type() + "] failed to apply the inference response: " + e.getMessage(),
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
        private final List<FieldMapping> mappings = config.mappings();
        /** Whether the encoding is chunked ({@code EncodeOptions.chunking}): windows, coverage and the chunk fields. */
        private final boolean chunked = config.options().hasChunking();
        private final List<IngestDocumentWrapper> in;
        private final Exception[] errors;
        /** Per document and mapping: index into {@link #texts}, or -1 when missing/not sent. */
        private final int[][] textIndex;
        private final boolean[][] missing;
        /** Per document and mapping: whether its index can hold the output (and the dimension it maps). */
        private final MappingVerdict[][] verdicts;
        /** One verdict per target and prefix for the whole sub-batch. */
        private final Map<String, MappingVerdict> verdictOf = new HashMap<>();
        /** One chunking check per target and prefix for the whole sub-batch: why not, or empty. */
        private final Map<String, String> chunkingProblem = new HashMap<>();
        final List<String> texts = new ArrayList<>();

        Batch(List<IngestDocumentWrapper> in) {
            this.in = in;
            this.errors = new Exception[in.size()];
            this.textIndex = new int[in.size()][mappings.size()];
            this.missing = new boolean[in.size()][mappings.size()];
            this.verdicts = new MappingVerdict[in.size()][mappings.size()];
        }

        /**
         * Checks each document's index and extracts its texts; documents whose index cannot hold the output, or with
         * bad or (not allowed) missing input fail here, before any call.
         */
        void prepare() {
            for (int d = 0; d < in.size(); d++) {
                IngestDocumentWrapper w = in.get(d);
                Arrays.fill(textIndex[d], -1);
                if (w.getException() != null || w.getIngestDocument() == null) {
                    errors[d] = w.getException(); // already failed upstream: pass through untouched
                    continue;
                }
                IngestDocument doc = w.getIngestDocument();
                List<String> docTexts = new ArrayList<>(mappings.size());
                try {
                    checkMappings(doc, d);
                    for (int m = 0; m < mappings.size(); m++) {
                        String text = extract(doc, mappings.get(m));
                        if (text == null) {
                            missing[d][m] = true;
                        }
                        docTexts.add(text);
                    }
                } catch (Exception e) {
                    errors[d] = e;
                    continue;
                }
                for (int m = 0; m < mappings.size(); m++) {
                    String text = docTexts.get(m);
                    if (text != null) {
                        textIndex[d][m] = texts.size();
                        texts.add(text);
                    }
                }
            }
        }

        /** Fails the document (400) when its index cannot hold the output of one of the mappings. */
        private void checkMappings(IngestDocument doc, int d) {
            String index = indexOf(doc);
            List<String> problems = new ArrayList<>();
            String where = null;
            for (int m = 0; m < mappings.size(); m++) {
                SesaFieldNames names = mappings.get(m).target();
                MappingVerdict v = verdictOf.computeIfAbsent(
                    index + "\u0000" + names.prefix(),
                    k -> targetMappings.verdict(index, names, chunked)
                );
                verdicts[d][m] = v;
                if (v.fits() == false) {
                    where = v.where();
                    problems.addAll(v.problems());
                }
            }
            if (problems.isEmpty() == false) {
                throw cannotHold(doc, where, problems);
            }
            if (config.allowModelChange() == false) {
                for (FieldMapping mapping : mappings) {
                    String problem = chunkingProblem.computeIfAbsent(
                        index + "\u0000" + mapping.prefix(),
                        k -> chunkingProblem(index, mapping.prefix())
                    );
                    if (problem.isEmpty() == false) {
                        throw new IllegalStateException(problem);
                    }
                }
            }
        }

        /**
         * Why a document of {@code index} cannot be written for the prefix: the index records another chunking than this
         * encoder's (its documents would be cut into windows two ways and searched together), or a record that cannot
         * be read; empty when nothing is recorded or the record matches.
         */
        private String chunkingProblem(String index, String prefix) {
            Object recorded = modelMeta.expectedChunking(index, prefix);
            if (recorded == null) {
                return "";
            }
            String where = "_meta." + SesaConventions.get().indexMetaKey() + ".chunking." + prefix;
            Chunking mine = config.options().hasChunking() ? config.options().getChunking() : null;
            Chunking theirs;
            try {
                theirs = ChunkingOption.readRecord(recorded);
            } catch (IllegalArgumentException e) {
                return "[" + config.type() + "] index [" + index + "] has an unreadable [" + where + "]: " + e.getMessage();
            }
            if (Objects.equals(mine, theirs)) {
                return "";
            }
            return String.format(
                Locale.ROOT,
                "[%s] index [%s] records chunking %s for target [%s] (mapping %s) but this pipeline's [%s] "
                    + "cuts texts with chunking %s: documents cut into windows two ways would be searched together. "
                    + "Fix: ingest with a pipeline of the index's chunking, or into a new index created for this one "
                    + "(`sesa index create NAME --chunking`, or %s set when creating it), or set allow_model_change: true",
                config.type(),
                index,
                ChunkingOption.toRecord(theirs),
                prefix,
                where,
                config.type(),
                ChunkingOption.toRecord(mine),
                where
            );
        }

        private IllegalArgumentException cannotHold(IngestDocument doc, String where, List<String> problems) {
            String index = indexOf(doc);
            return new IllegalArgumentException(
                String.format(
                    Locale.ROOT,
                    "[%s] %s cannot hold the SESA fields of %s, so document [%s] was not indexed (nothing is written into an index "
                        + "that would map them dynamically): %s. Fix: %s",
                    config.type(),
                    where,
                    targetsOf(),
                    docId(doc),
                    String.join("; ", problems),
                    config.mappingFix().apply(index)
                )
            );
        }

        private String targetsOf() {
            List<String> prefixes = new ArrayList<>();
            for (FieldMapping m : mappings) {
                prefixes.add(m.prefix());
            }
            return (prefixes.size() == 1 ? "target " : "targets ") + prefixes;
        }

        /** Joined text of the mapping's source fields, or null when all are absent/null/blank (and that is allowed). */
        private String extract(IngestDocument doc, FieldMapping mapping) {
            StringBuilder sb = new StringBuilder();
            for (String field : mapping.sourceFields()) {
                Object value = doc.hasField(field) ? doc.getFieldValue(field, Object.class) : null;
                if (value == null) {
                    continue;
                }
                List<?> values = value instanceof List<?> list && config.joinLists() ? list : List.of(value);
                for (Object v : values) {
                    if (v == null) {
                        continue;
                    }
                    if (v instanceof String s) {
                        if (Texts.isBlank(s)) {
                            continue;
                        }
                        if (sb.length() > 0) {
                            sb.append(config.separator());
                        }
                        sb.append(s);
                    } else {
                        throw new IllegalArgumentException(
                            String.format(
                                Locale.ROOT,
                                "[%s] field [%s] of document [%s] must be a string%s to be encoded, found %s",
                                config.type(),
                                field,
                                docId(doc),
                                config.joinLists() ? " or a list of strings" : "",
                                v.getClass().getSimpleName()
                            )
                        );
                    }
                }
            }
            if (sb.length() > 0) {
                return sb.toString();
            }
            if (config.ignoreMissing()) {
                return null;
            }
            throw new IllegalArgumentException(
                String.format(
                    Locale.ROOT,
                    "[%s] source field%s %s of document [%s] missing, null or blank; cannot encode target [%s] "
                        + "(set ignore_missing: true to index such documents without vectors)",
                    config.type(),
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
            Map<String, String> models = response == null ? null : IndexModels.of(response);
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
            List<String> dimensionProblems = new ArrayList<>();
            String where = null;
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
                            config.type(),
                            mapping.sourceFields(),
                            mapping.prefix(),
                            docId(doc),
                            e.getError().getCode(),
                            e.getError().getMessage()
                        ),
                        RestStatus.BAD_REQUEST
                    );
                }
                if (chunked) {
                    checkWindows(doc, mapping, e);
                }
                int denseCount = chunked ? e.getWindows(0).getDenseCount() : e.getDenseCount();
                if (denseCount == 0) {
                    throw new OpenSearchStatusException(
                        "["
                            + config.type()
                            + "] inference server returned no dense vector for target ["
                            + mapping.prefix()
                            + "] in document ["
                            + docId(doc)
                            + "]",
                        RestStatus.BAD_GATEWAY
                    );
                }
                MappingVerdict verdict = verdicts[d][m];
                String dimension = verdict == null ? null : verdict.dimensionProblem(mapping.target().dense(), denseCount);
                if (dimension != null) {
                    dimensionProblems.add(dimension);
                    where = verdict.where();
                }
                if (config.allowModelChange() == false) {
                    Object expected = modelMeta.expectedModels(indexOf(doc), mapping.prefix());
                    if (expected != null && modelsMatch(expected, models) == false) {
                        throw new IllegalStateException(
                            String.format(
                                Locale.ROOT,
                                "[%s] index [%s] was built with models %s for target [%s] (mapping _meta.%s.models.%s) but the inference "
                                    + "server now uses %s; %s",
                                config.type(),
                                indexOf(doc),
                                expected,
                                mapping.prefix(),
                                SesaConventions.get().indexMetaKey(),
                                mapping.prefix(),
                                models,
                                config.modelChangeFix()
                            )
                        );
                    }
                }
            }
            if (dimensionProblems.isEmpty() == false) {
                throw cannotHold(doc, where, dimensionProblems);
            }
        }

        /** A chunked embedding must have at least one window, all of one dimension (that of the first). */
        private void checkWindows(IngestDocument doc, FieldMapping mapping, Embedding e) {
            String problem = null;
            if (e.getWindowsCount() == 0) {
                problem = "no windows for a chunked encoding (an inference server without chunking support?)";
            } else {
                int dim = e.getWindows(0).getDenseCount();
                for (int w = 1; w < e.getWindowsCount(); w++) {
                    if (e.getWindows(w).getDenseCount() != dim) {
                        problem = "windows of different dimensions (" + dim + " and " + e.getWindows(w).getDenseCount() + ")";
                        break;
                    }
                }
            }
            if (problem != null) {
                throw new OpenSearchStatusException(
                    "[" + config.type() + "] inference server returned " + problem + " for target [" + mapping.prefix() + "] in document ["
                        + docId(doc) + "]",
                    RestStatus.BAD_GATEWAY
                );
            }
        }

        private void write(IngestDocument doc, int d, EncodeResponse response, Map<String, String> models) {
            for (int m = 0; m < mappings.size(); m++) {
                SesaFieldNames names = mappings.get(m).target();
                int idx = textIndex[d][m];
                if (idx < 0) {
                    if (missing[d][m]) {
                        // missing text allowed: no vectors, and no stale ones from an earlier version of the document.
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
                if (chunked) {
                    // the single-vector field stays what it was: the first window (the server's mean of the windows
                    // measured worse); every window goes to <prefix>_chunks for best-window search. A text of one
                    // window stores none: <prefix>_dense is that window and the dense branch finds it there, so a
                    // short document costs no nested document and no second copy of its vector in _source.
                    doc.setFieldValue(names.dense(), new ArrayList<>(e.getWindows(0).getDenseList()));
                    if (e.getWindowsCount() > 1) {
                        List<Map<String, Object>> chunks = new ArrayList<>(e.getWindowsCount());
                        for (Window w : e.getWindowsList()) {
                            Map<String, Object> chunk = new LinkedHashMap<>();
                            chunk.put("dense", new ArrayList<>(w.getDenseList()));
                            chunk.put("start", w.getStartChar());
                            chunk.put("end", w.getEndChar());
                            chunks.add(chunk);
                        }
                        doc.setFieldValue(names.chunks(), chunks);
                    } else if (doc.hasField(names.chunks())) {
                        doc.removeField(names.chunks()); // stale windows of an earlier, longer version
                    }
                    doc.setFieldValue(names.coverage(), e.getCoverage());
                } else {
                    doc.setFieldValue(names.dense(), new ArrayList<>(e.getDenseList()));
                }
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

    static String indexOf(IngestDocument doc) {
        Object index = doc.getSourceAndMetadata().get(IngestDocument.Metadata.INDEX.getFieldName());
        return index == null ? null : index.toString();
    }

    static String docId(IngestDocument doc) {
        Object id = doc.getSourceAndMetadata().get(IngestDocument.Metadata.ID.getFieldName());
        return id == null ? "_none_" : id.toString();
    }
}
