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

    /** Every output field, e.g. to clear stale values. */
    public String[] all() {
        return new String[] { dense, concepts, conceptLabels, model, truncated, status };
    }
}
