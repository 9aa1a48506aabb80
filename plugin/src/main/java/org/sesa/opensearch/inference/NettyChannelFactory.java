package org.sesa.opensearch.inference;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.MultiThreadIoEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.nio.NioIoHandler;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioSocketChannel;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContextBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslProvider;

import javax.net.ssl.SSLException;

import java.util.concurrent.Executor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;

/**
 * Netty channels with the pure-Java NIO transport and the JDK TLS provider: the bundled epoll and
 * BoringSSL native libraries are never loaded, so nothing is unpacked to disk and nothing native runs
 * inside the OpenSearch JVM. One small event loop group is shared by all endpoints.
 *
 * <p>Threads: the callbacks of the calls and gRPC's offload work (name resolution, otherwise done on gRPC's own
 * shared {@code grpc-default-executor} threads) run on the executor the client passes in, the node's
 * {@code sesa_inference} thread pool. The event loops are the one kind of thread this factory still makes itself
 * (named {@code sesa_inference_event_loop}): an event loop holds its thread for its whole life, polling the
 * sockets, so in a thread pool it would show as permanently active and tie the pool's size to the loop count without
 * telling anything about load; OpenSearch's own Netty transports keep their event loops on threads of their own
 * for the same reason. They do no model work: every response is handed to the executor at once.
 */
public final class NettyChannelFactory implements ChannelFactory {

    /** Responses for a full batch (1024 texts x 1024 floats plus concepts) exceed gRPC's 4 MiB default. */
    static final int MAX_INBOUND_MESSAGE_BYTES = 64 * 1024 * 1024;

    private final InferenceClientConfig.TlsConfig tls;
    private final int eventLoopThreads;
    private final ThreadFactory threadFactory;
    private final String userAgent;
    private EventLoopGroup group;
    private SslContext sslContext;
    private boolean closed;

    public NettyChannelFactory(InferenceClientConfig.TlsConfig tls, int eventLoopThreads, ThreadFactory threadFactory, String userAgent) {
        this.tls = tls;
        this.eventLoopThreads = eventLoopThreads;
        this.threadFactory = threadFactory;
        this.userAgent = userAgent;
    }

    @Override
    public synchronized ManagedChannel create(Endpoint endpoint, Executor callbackExecutor) {
        if (closed) {
            throw new IllegalStateException("channel factory is closed");
        }
        if (group == null) {
            group = new MultiThreadIoEventLoopGroup(eventLoopThreads, threadFactory, NioIoHandler.newFactory());
        }
        NettyChannelBuilder builder = NettyChannelBuilder.forAddress(endpoint.host(), endpoint.port())
            .channelType(NioSocketChannel.class)
            .eventLoopGroup(group)
            .executor(callbackExecutor)
            .offloadExecutor(callbackExecutor)
            .maxInboundMessageSize(MAX_INBOUND_MESSAGE_BYTES)
            .userAgent(userAgent)
            // InferenceClient owns retries (with endpoint rotation); gRPC's own would multiply attempts.
            .disableRetry();
        if (tls == null) {
            builder.usePlaintext();
        } else {
            builder.sslContext(sslContext()).useTransportSecurity();
        }
        return builder.build();
    }

    private SslContext sslContext() {
        if (sslContext == null) {
            try {
                SslContextBuilder b = GrpcSslContexts.configure(SslContextBuilder.forClient(), SslProvider.JDK);
                if (tls.caFile() != null) {
                    b.trustManager(tls.caFile().toFile());
                }
                if (tls.certFile() != null) {
                    b.keyManager(tls.certFile().toFile(), tls.keyFile().toFile(), tls.keyPassword());
                }
                sslContext = b.build();
            } catch (SSLException | IllegalArgumentException e) {
                throw new IllegalArgumentException("cannot build TLS context for the inference client from " + tls + ": " + e.getMessage(), e);
            }
        }
        return sslContext;
    }

    /** Eagerly builds the TLS context so that unreadable PEM files fail node start-up, not the first request. */
    public synchronized void validate() {
        if (tls != null) {
            sslContext();
        }
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (group != null) {
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS);
        }
    }
}
