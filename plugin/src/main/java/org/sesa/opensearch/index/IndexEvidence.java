package org.sesa.opensearch.index;

/**
 * What one index says about one target prefix: a valid {@link EvidenceRecord}, a record that could not be read
 * (and is therefore ignored), or nothing.
 *
 * @param record  the valid record; null when there is none
 * @param invalid why the index's record was ignored; null unless it is malformed
 */
public record IndexEvidence(EvidenceRecord record, String invalid) {

    /** The index has no record for the prefix (or is not known to this node's cluster state). */
    public static final IndexEvidence ABSENT = new IndexEvidence(null, null);

    public static IndexEvidence of(EvidenceRecord record) {
        return new IndexEvidence(java.util.Objects.requireNonNull(record), null);
    }

    public static IndexEvidence invalid(String reason) {
        return new IndexEvidence(null, java.util.Objects.requireNonNull(reason));
    }
}
