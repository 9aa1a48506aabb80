package org.sesa.opensearch.util;

/**
 * The processors of this plugin run asynchronously only, so that no OpenSearch thread waits on the inference
 * server; their synchronous entry points fail with the one error made here.
 */
public final class AsyncOnly {

    private AsyncOnly() {}

    /** {@code [type] is asynchronous; call <asyncEntryPoint>}: what a processor's synchronous entry point throws. */
    public static UnsupportedOperationException syncCall(String type, String asyncEntryPoint) {
        return new UnsupportedOperationException("[" + type + "] is asynchronous; call " + asyncEntryPoint);
    }
}
