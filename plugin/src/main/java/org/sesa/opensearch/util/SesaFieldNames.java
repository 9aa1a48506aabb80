package org.sesa.opensearch.util;

/**
 * The output fields written for one target prefix ({@code <prefix>_dense}, {@code <prefix>_concepts}, ...).
 * Suffixes come from conventions.json so the index template and the processor cannot drift apart.
 */
public record SesaFieldNames(String prefix, String dense, String concepts, String conceptLabels, String model, String truncated, String status) {

    public static SesaFieldNames forPrefix(String prefix) {
        SesaConventions c = SesaConventions.get();
        return new SesaFieldNames(
            prefix,
            prefix + c.fieldSuffix("dense"),
            prefix + c.fieldSuffix("concepts"),
            prefix + c.fieldSuffix("concept_labels"),
            prefix + c.fieldSuffix("model"),
            prefix + c.fieldSuffix("truncated"),
            prefix + c.fieldSuffix("status")
        );
    }

    /**
     * {@code <prefix>_chunks}: the windows of a chunked encoding (a {@code nested} field of {@code {dense, start, end}}
     * objects); written only by {@code sesa_encode} with its {@code chunking} option.
     */
    public String chunks() {
        return prefix + SesaConventions.get().fieldSuffix("chunks");
    }

    /** {@code <prefix>_chunks.dense}: the window vectors. */
    public String chunksDense() {
        return chunks() + ".dense";
    }

    /** {@code <prefix>_coverage}: the share of the text the windows of a chunked encoding cover. */
    public String coverage() {
        return prefix + SesaConventions.get().fieldSuffix("coverage");
    }

    /** Every output field, e.g. to clear stale values. */
    public String[] all() {
        return new String[] { dense, concepts, conceptLabels, model, truncated, status, chunks(), coverage() };
    }
}
