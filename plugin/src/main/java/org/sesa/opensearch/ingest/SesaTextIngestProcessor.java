package org.sesa.opensearch.ingest;

import org.opensearch.ingest.AbstractBatchingSystemProcessor;
import org.opensearch.ingest.IngestDocument;
import org.opensearch.ingest.IngestDocumentWrapper;
import org.sesa.opensearch.util.AsyncOnly;

import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Consumer;

/**
 * The system ingest processor of an index with {@code sesa_text} fields: OpenSearch runs it on every document written
 * to such an index (after the default and final pipelines, and with no pipeline at all), and it encodes each
 * {@code sesa_text} field into its {@code <field>_sesa_*} siblings. The work is done by the {@link SesaEncoder}s it
 * shares with {@code sesa_encode} (the same batching, retries, per-document failures, mapping check and model guard):
 * one encoder per concept space, so the fields of one space share one Encode call per sub-batch. A document without
 * text in a field is indexed with {@code <field>_sesa_status: missing_source} for it and no vectors; every other
 * failure fails the document with its reason.
 */
public final class SesaTextIngestProcessor extends AbstractBatchingSystemProcessor {

    /** The processor's name in messages, and the key of its factory among the system ingest processors. */
    public static final String TYPE = "sesa_text";

    private final List<SesaEncoder> encoders;
    private final Map<String, String> fields;

    /**
     * @param encoders one per concept space, run one after the other on each sub-batch
     * @param fields   the index's sesa_text fields: path to concept space (empty: the server's default)
     */
    SesaTextIngestProcessor(String tag, String description, int batchSize, List<SesaEncoder> encoders, Map<String, String> fields) {
        super(tag, description, batchSize);
        this.encoders = List.copyOf(encoders);
        this.fields = Map.copyOf(fields);
    }

    @Override
    public String getType() {
        return TYPE;
    }

    public int getBatchSize() {
        return batchSize;
    }

    /** The sesa_text fields this processor encodes: path to concept space (empty: the server's default). */
    public Map<String, String> fields() {
        return fields;
    }

    public List<SesaEncoder> encoders() {
        return encoders;
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
        runFrom(0, wrappers, handler);
    }

    /** Encoder {@code i} and the ones after it, each on the documents the previous one handed back. */
    private void runFrom(int i, List<IngestDocumentWrapper> wrappers, Consumer<List<IngestDocumentWrapper>> handler) {
        if (i == encoders.size()) {
            handler.accept(wrappers);
            return;
        }
        encoders.get(i).encode(wrappers, out -> runFrom(i + 1, out, handler));
    }
}
