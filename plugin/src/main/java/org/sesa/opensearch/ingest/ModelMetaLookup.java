package org.sesa.opensearch.ingest;

/**
 * Which models an index expects for a target prefix (from its mapping {@code _meta}), so that vectors of
 * two different models never end up in one field. Separate from the processor so tests need no cluster.
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
}
