package org.sesa.opensearch.index;

import org.sesa.opensearch.util.SesaFieldNames;

/**
 * Whether the index a document goes to can hold the fields written for a target prefix ({@link MappingVerdict}).
 * {@code sesa_encode} and the {@code sesa_text} system processor ask before they write anything, so that no SESA output
 * is ever mapped dynamically (a dense vector as floats, one float field per concept key). Separate from the reader
 * ({@link TargetMappingCheck}) so tests need no cluster.
 */
@FunctionalInterface
public interface TargetMappings {

    /**
     * @param target the document's {@code _index}: an index, alias or data stream (its write index is checked), or a
     *               name the bulk request will create from an index template
     * @param names  the output fields of one target prefix
     */
    MappingVerdict verdict(String target, SesaFieldNames names);

    /**
     * As {@link #verdict(String, SesaFieldNames)}; with {@code chunks} (a chunked encoding) the index must also hold
     * {@code <prefix>_chunks} and {@code <prefix>_coverage} ({@link MappingVerdict#of(String, java.util.Map, SesaFieldNames,
     * String, boolean)}). The default checks nothing more (test doubles); {@link TargetMappingCheck} does.
     */
    default MappingVerdict verdict(String target, SesaFieldNames names, boolean chunks) {
        return verdict(target, names);
    }
}
