package org.sesa.opensearch.index;

import org.opensearch.action.IndicesRequest;

/**
 * The {@code sesa_text} fields of a search's target indices, for {@code ext.sesa.field}. Separate from the reader
 * ({@link IndexSesaMeta}) so tests need no cluster.
 */
@FunctionalInterface
public interface SesaTextFieldLookup {

    /** Knows no sesa_text field: every {@code ext.sesa.field} is refused. */
    SesaTextFieldLookup NONE = (request, field) -> {
        throw new IllegalArgumentException("[ext.sesa.field] [" + field + "] is not a sesa_text field of the target indices");
    };

    /**
     * The concept space of {@code field} (empty: the server's default), which must be a {@code sesa_text} field of every
     * concrete index {@code request} targets, in the same concept space.
     *
     * @throws IllegalArgumentException (400) naming the field and the index where it is not a sesa_text field, or the
     *                                  indices whose concept spaces differ
     */
    String conceptSpace(IndicesRequest request, String field);
}
