package org.sesa.opensearch.search;

import org.opensearch.OpenSearchStatusException;
import org.opensearch.core.rest.RestStatus;

/**
 * The query text of a hybrid search could not be encoded and the search may not degrade (strict, or the server
 * rejected the text). Raised by {@code sesa_query} after the BM25 branch already started; {@code sesa_fuse}
 * passes it on unchanged, with the inference server's status.
 */
public final class QueryEncodingException extends OpenSearchStatusException {

    public QueryEncodingException(String message, RestStatus status, Throwable cause) {
        super(message, status, cause);
    }
}
