package org.sesa.opensearch.inference;

import io.grpc.ManagedChannel;

import java.io.Closeable;
import java.util.concurrent.Executor;

/**
 * Makes the channel for one endpoint. Production uses {@link NettyChannelFactory}; tests plug in
 * in-process channels. Closing releases shared transport resources (event loops).
 */
public interface ChannelFactory extends Closeable {

    /**
     * @param endpoint         where to connect
     * @param callbackExecutor executor for call callbacks, so no model response runs on a Netty event loop, and for
     *                         the channel's blocking offload work (the node's {@code sesa_inference} thread pool)
     */
    ManagedChannel create(Endpoint endpoint, Executor callbackExecutor);

    @Override
    default void close() {}
}
