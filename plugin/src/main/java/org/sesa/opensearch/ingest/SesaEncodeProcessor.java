package org.sesa.opensearch.ingest;

import org.opensearch.common.unit.TimeValue;
import org.opensearch.ingest.AbstractBatchingProcessor;
import org.opensearch.ingest.IngestDocument;
import org.opensearch.ingest.IngestDocumentWrapper;
import org.sesa.inference.v1.Chunking;
import org.sesa.inference.v1.EncodeOptions;
import org.sesa.inference.v1.TextKind;
import org.sesa.opensearch.index.TargetMappings;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.util.AsyncOnly;
import org.sesa.opensearch.util.SesaConventions;

import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.Consumer;

/**
 * {@code sesa_encode}: adds a dense vector, SESA concept weights and labels to each document, one Encode
 * call per sub-batch. A document leaves this processor either with all its vectors, or with
 * {@code <prefix>_status: missing_source} (only under {@code ignore_missing}), or failed with a reason;
 * never silently without vectors, and never into an index whose mapping cannot hold them (the target index, or the
 * index template that will create it, must map every output field: {@link TargetMappings}). The work is done by the
 * {@link SesaEncoder} it shares with the {@code sesa_text} system processor.
 */
public final class SesaEncodeProcessor extends AbstractBatchingProcessor {

    public static final String TYPE = "sesa_encode";

    private final SesaEncoder encoder;

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
        Chunking chunking,
        InferenceClient client,
        ModelMetaLookup modelMeta,
        TargetMappings targetMappings
    ) {
        super(tag, description, batchSize);
        EncodeOptions.Builder options = EncodeOptions.newBuilder()
            .setKind(TextKind.TEXT_KIND_PASSAGE)
            .setTopKConcepts(topKConcepts)
            .setTopLabels(topLabels);
        if (chunking != null) {
            options.setChunking(chunking);
        }
        this.encoder = new SesaEncoder(
            new SesaEncoder.Config(
                TYPE,
                mappings,
                separator,
                timeout,
                ignoreMissing,
                false,
                options.build(),
                allowModelChange,
                SesaEncodeProcessor::mappingFix,
                "reindex into a new index, or set allow_model_change: true"
            ),
            client,
            modelMeta,
            targetMappings
        );
    }

    /** What to do when an index cannot hold the output: make one that can. */
    static String mappingFix(String index) {
        String name = index == null ? "<name>" : index;
        return "create the index with `sesa index create "
            + name
            + "` (or map a `sesa_text` field), or name it `"
            + SesaConventions.get().defaultIndexPattern()
            + "` so the template applies";
    }

    @Override
    public String getType() {
        return TYPE;
    }

    public int getBatchSize() {
        return batchSize;
    }

    public TimeValue getTimeout() {
        return encoder.config().timeout();
    }

    public boolean isIgnoreMissing() {
        return encoder.config().ignoreMissing();
    }

    /** The {@code chunking} option, or null when off. */
    public Chunking getChunking() {
        return encoder.config().options().hasChunking() ? encoder.config().options().getChunking() : null;
    }

    public List<FieldMapping> getMappings() {
        return encoder.config().mappings();
    }

    @Override
    public void execute(IngestDocument ingestDocument, BiConsumer<IngestDocument, Exception> handler) {
        SesaEncoder.executeOne(ingestDocument, handler, this::subBatchExecute);
    }

    /** The synchronous path would block an ingest thread on the network; OpenSearch uses the async one. */
    @Override
    public IngestDocument execute(IngestDocument ingestDocument) {
        throw AsyncOnly.syncCall(TYPE, "execute(IngestDocument, BiConsumer)");
    }

    /** Same as the base class, but hands results back in input order ({@link SesaEncoder#inInputOrder}). */
    @Override
    public void batchExecute(List<IngestDocumentWrapper> wrappers, Consumer<List<IngestDocumentWrapper>> handler) {
        SesaEncoder.inInputOrder(wrappers, batchSize, handler, super::batchExecute);
    }

    @Override
    protected void subBatchExecute(List<IngestDocumentWrapper> wrappers, Consumer<List<IngestDocumentWrapper>> handler) {
        encoder.encode(wrappers, handler);
    }
}
