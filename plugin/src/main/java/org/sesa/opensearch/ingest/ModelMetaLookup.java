package org.sesa.opensearch.ingest;

/**
 * What an index records (its mapping's {@code _meta}) about how a target prefix was encoded: the models and the
 * chunking, so that vectors of two different models, or texts cut into windows two ways, never end up in one field.
 * Separate from the processor so tests need no cluster.
 */
@FunctionalInterface
public interface ModelMetaLookup {

    /** Nothing is ever expected: for tests and for indices without SESA metadata. */
    ModelMetaLookup NONE = (index, prefix) -> null;

    /**
     * @return the expected value of {@code _meta.<index_meta_key>.models.<prefix>} (a map such as
     *     {@code {"dense": "id@v", "concepts": "id@v"}}, or a string naming the dense model), or {@code null}
     */
    Object expectedModels(String index, String prefix);

    /**
     * @return the expected value of {@code _meta.<index_meta_key>.chunking.<prefix>} (a {@code chunking} option such as
     *     {@code {"window_tokens": 0, "overlap_tokens": 32, "max_windows": 64}}, or {@code "off"}), or {@code null}:
     *     nothing recorded, nothing checked
     */
    default Object expectedChunking(String index, String prefix) {
        return null;
    }
}
