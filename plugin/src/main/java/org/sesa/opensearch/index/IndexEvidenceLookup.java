package org.sesa.opensearch.index;

/** The evidence record a concrete index carries for a target prefix. Separate from the reader so tests need no cluster. */
@FunctionalInterface
public interface IndexEvidenceLookup {

    /** No index ever has a record. */
    IndexEvidenceLookup NONE = (index, prefix) -> IndexEvidence.ABSENT;

    /**
     * @param index  a concrete index name as a hit carries it ({@code cluster:index} for a remote cluster's hit, which
     *               is never found locally)
     * @param prefix the target prefix of the pipeline's {@code sesa_query}
     */
    IndexEvidence evidence(String index, String prefix);
}
