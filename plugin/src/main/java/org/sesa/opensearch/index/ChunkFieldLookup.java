package org.sesa.opensearch.index;

import org.opensearch.action.IndicesRequest;

/**
 * Whether a search's target indices hold the windows of a chunked encoding ({@code <prefix>_chunks}, a {@code nested}
 * field), so that the dense branch can score each document by its best window. Separate from the reader
 * ({@link TargetChunkFields}) so tests need no cluster.
 */
@FunctionalInterface
public interface ChunkFieldLookup {

    /** Knows no chunk field: the dense branch searches {@code <prefix>_dense} only. */
    ChunkFieldLookup NONE = (request, chunksField) -> false;

    /** Whether at least one local concrete index {@code request} targets maps {@code chunksField} as {@code nested}. */
    boolean mapsChunks(IndicesRequest request, String chunksField);
}
