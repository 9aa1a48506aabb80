package org.sesa.opensearch.inference;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.opensearch.common.xcontent.XContentFactory;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.xcontent.XContentBuilder;
import org.sesa.inference.v1.EncodeRequest;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.opensearch.FakeInference;
import org.opensearch.threadpool.ExecutorBuilder;
import org.opensearch.threadpool.ThreadPool;
import org.opensearch.threadpool.ThreadPoolStats;
import org.sesa.opensearch.rest.RestSesaInfoAction;
import org.sesa.opensearch.settings.SesaSettings;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class InferenceClientTests {

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    /** A real Netty gRPC server on 127.0.0.1 with a random port. */
    private Endpoint startNettyServer(FakeInference service, HealthStatusManager health) throws IOException {
        NettyServerBuilder b = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)).addService(service);
        if (health != null) {
            b.addService(health.getHealthService());
        }
        Server server = b.build().start();
        toClose.add(() -> {
            server.shutdownNow();
            server.awaitTermination(5, TimeUnit.SECONDS);
        });
        return new Endpoint("127.0.0.1", server.getPort());
    }

    /** A port nothing listens on (connection refused). */
    private static Endpoint deadEndpoint() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return new Endpoint("127.0.0.1", s.getLocalPort());
        }
    }

    private InferenceClient nettyClient(List<Endpoint> endpoints, TimeValue timeout) {
        NettyChannelFactory channels = new NettyChannelFactory(null, 1, Executors.defaultThreadFactory(), "sesa-test");
        InferenceClient c = FakeInference.client(endpoints, channels).defaultTimeout(() -> timeout).build();
        toClose.add(c);
        return c;
    }

    /** A node's thread pool with the plugin's pools, terminated after the test. */
    private ThreadPool threadPool() {
        Settings settings = Settings.builder().put("node.name", "sesa-test").build();
        ThreadPool tp = new ThreadPool(settings, SesaSettings.executorBuilders(settings).toArray(new ExecutorBuilder<?>[0]));
        toClose.add(() -> ThreadPool.terminate(tp, 10, TimeUnit.SECONDS));
        return tp;
    }

    private static long completed(ThreadPool tp, String name) {
        for (ThreadPoolStats.Stats s : tp.stats()) {
            if (s.getName().equals(name)) {
                return s.getCompleted();
            }
        }
        throw new AssertionError("no thread pool [" + name + "]");
    }

    /** Answers with the name of the thread the listener ran on. */
    private static String callbackThread(InferenceClient c) throws Exception {
        CompletableFuture<String> f = new CompletableFuture<>();
        c.encode(
            EncodeRequest.newBuilder().addTexts("x").build(),
            null,
            ActionListener.wrap(r -> f.complete(Thread.currentThread().getName()), f::completeExceptionally)
        );
        return f.get(10, TimeUnit.SECONDS);
    }

    @Test
    void callbacksRunOnTheNodesSesaThreadPool() throws Exception {
        ThreadPool tp = threadPool();
        FakeInference.InProcess server = new FakeInference.InProcess(new FakeInference());
        toClose.add(server);
        InferenceClient c = FakeInference.client(List.of(server.endpoint), FakeInference.IN_PROCESS_CHANNELS)
            .threadPool(tp, SesaSettings.THREAD_POOL)
            .build();
        toClose.add(c);
        long before = completed(tp, SesaSettings.THREAD_POOL);
        String thread = callbackThread(c);
        assertTrue(thread.contains("[" + SesaSettings.THREAD_POOL + "]"), thread);
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5); // counted once the task has returned
        while (completed(tp, SesaSettings.THREAD_POOL) <= before && System.nanoTime() < until) {
            Thread.sleep(5);
        }
        assertTrue(completed(tp, SesaSettings.THREAD_POOL) > before, "the node's thread pool stats count the callbacks");

        // through a real Netty channel too (whose event loops are the only threads the plugin still makes)
        FakeInference service = new FakeInference();
        NettyChannelFactory channels = new NettyChannelFactory(null, 1, Executors.defaultThreadFactory(), "sesa-test");
        InferenceClient netty = FakeInference.client(List.of(startNettyServer(service, null)), channels).threadPool(tp, SesaSettings.THREAD_POOL).build();
        toClose.add(netty);
        String nettyThread = callbackThread(netty);
        assertTrue(nettyThread.contains("[" + SesaSettings.THREAD_POOL + "]"), nettyThread);
    }

    @Test
    void retriesAreScheduledByTheNodeAndRunOnItsPool() throws Exception {
        ThreadPool tp = threadPool();
        FakeInference service = new FakeInference();
        FakeInference.InProcess server = new FakeInference.InProcess(service);
        toClose.add(server);
        service.encoding.failNext(io.grpc.Status.UNAVAILABLE.withDescription("warming up"), 2);
        InferenceClient c = FakeInference.client(List.of(server.endpoint), FakeInference.IN_PROCESS_CHANNELS)
            .threadPool(tp, SesaSettings.THREAD_POOL)
            .build();
        toClose.add(c);
        assertTrue(callbackThread(c).contains("[" + SesaSettings.THREAD_POOL + "]"));
        assertEquals(3, service.encoding.calls.get(), "two retries, then the answer");
    }

    @Test
    void closeFailsAScheduledRetryOnTheNodesPoolAndLeavesThePoolRunning() throws Exception {
        ThreadPool tp = threadPool();
        FakeInference service = new FakeInference();
        FakeInference.InProcess server = new FakeInference.InProcess(service);
        toClose.add(server);
        service.encoding.failNext(io.grpc.Status.UNAVAILABLE.withDescription("warming up"), 20);
        InferenceClient c = FakeInference.client(List.of(server.endpoint), FakeInference.IN_PROCESS_CHANNELS)
            .threadPool(tp, SesaSettings.THREAD_POOL)
            .maxRetries(() -> 20)
            .defaultTimeout(() -> TimeValue.timeValueSeconds(60))
            .build();
        CompletableFuture<EncodeResponse> f = new CompletableFuture<>();
        c.encode(EncodeRequest.newBuilder().addTexts("x").build(), null, ActionListener.wrap(f::complete, f::completeExceptionally));
        // After the 6th failed attempt the next retry waits 800-1600ms: close while it is scheduled.
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (service.encoding.calls.get() < 6 && System.nanoTime() < until) {
            Thread.sleep(5);
        }
        Thread.sleep(100);
        assertFalse(f.isDone(), "a retry is pending");
        c.close();
        Exception e = assertThrowsCause(f);
        assertEquals(org.opensearch.core.rest.RestStatus.SERVICE_UNAVAILABLE, ((org.opensearch.OpenSearchStatusException) e).status());
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        Thread.sleep(1_700); // past the retry's time: the node's scheduler still fires it, and it must do nothing
        assertEquals(6, service.encoding.calls.get(), "no attempt after close");
        assertFalse(tp.executor(SesaSettings.THREAD_POOL).isShutdown(), "the node owns its thread pool");
        CompletableFuture<String> ran = new CompletableFuture<>();
        tp.executor(SesaSettings.THREAD_POOL).execute(() -> ran.complete("ok"));
        assertEquals("ok", ran.get(5, TimeUnit.SECONDS));
    }

    @Test
    void anUnknownThreadPoolFailsAtConstruction() {
        ThreadPool tp = threadPool();
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class,
            () -> FakeInference.client(List.of(new Endpoint("a", 1)), FakeInference.IN_PROCESS_CHANNELS).threadPool(tp, "no_such_pool").build()
        );
        assertTrue(e.getMessage().contains("no_such_pool"), e.getMessage());
    }

    private static EncodeResponse encode(InferenceClient c, String text) throws Exception {
        CompletableFuture<EncodeResponse> f = new CompletableFuture<>();
        c.encode(EncodeRequest.newBuilder().addTexts(text).build(), null, ActionListener.wrap(f::complete, f::completeExceptionally));
        return f.get(10, TimeUnit.SECONDS);
    }

    @Test
    void roundRobinAcrossLiveEndpoints() throws Exception {
        FakeInference a = new FakeInference();
        FakeInference b = new FakeInference();
        InferenceClient c = nettyClient(List.of(startNettyServer(a, null), startNettyServer(b, null)), TimeValue.timeValueSeconds(5));
        for (int i = 0; i < 10; i++) {
            assertEquals(1, encode(c, "t" + i).getEmbeddingsCount());
        }
        assertEquals(5, a.encoding.calls.get());
        assertEquals(5, b.encoding.calls.get());
    }

    @Test
    void roundRobinSkipsDeadEndpoint() throws Exception {
        FakeInference live = new FakeInference();
        Endpoint dead = deadEndpoint();
        InferenceClient c = nettyClient(List.of(dead, startNettyServer(live, null)), TimeValue.timeValueSeconds(5));
        for (int i = 0; i < 10; i++) {
            assertEquals(1, encode(c, "t" + i).getEmbeddingsCount(), "every call succeeds via the live endpoint");
        }
        assertEquals(10, live.encoding.calls.get());
        InferenceClient.EndpointStats deadStats = c.stats().get(0);
        assertEquals(dead, deadStats.endpoint());
        assertTrue(deadStats.attempts() <= 2, "dead endpoint is skipped after failing, attempts=" + deadStats.attempts());
        assertTrue(deadStats.consecutiveFailures() >= 1);
    }

    @Test
    void usesAServerAsSoonAsItComesBack() throws Exception {
        Endpoint endpoint = deadEndpoint();
        InferenceClient c = nettyClient(List.of(endpoint), TimeValue.timeValueSeconds(2));
        for (int i = 0; i < 3; i++) {
            CompletableFuture<EncodeResponse> f = new CompletableFuture<>();
            c.encode(EncodeRequest.newBuilder().addTexts("x").build(), null, ActionListener.wrap(f::complete, f::completeExceptionally));
            assertTrue(assertThrowsCause(f).getMessage().contains("UNAVAILABLE"));
        }
        FakeInference service = new FakeInference();
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", endpoint.port())).addService(service).build().start();
        toClose.add(() -> {
            server.shutdownNow();
            server.awaitTermination(5, TimeUnit.SECONDS);
        });
        long start = System.nanoTime();
        assertEquals(1, encode(c, "back").getEmbeddingsCount());
        assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) < 1_500, "no waiting for gRPC's reconnect backoff");

        CompletableFuture<List<EndpointReport>> f = new CompletableFuture<>();
        c.probeAll(TimeValue.timeValueSeconds(2), ActionListener.wrap(f::complete, f::completeExceptionally));
        assertTrue(f.get(10, TimeUnit.SECONDS).get(0).reachable());
    }

    @Test
    void allEndpointsDownFailsWithReason() throws Exception {
        InferenceClient c = nettyClient(List.of(deadEndpoint()), TimeValue.timeValueSeconds(5));
        CompletableFuture<EncodeResponse> f = new CompletableFuture<>();
        c.encode(EncodeRequest.newBuilder().addTexts("x").build(), null, ActionListener.wrap(f::complete, f::completeExceptionally));
        Exception e = assertThrowsCause(f);
        assertTrue(e.getMessage().contains("UNAVAILABLE"), e.getMessage());
        assertTrue(e.getMessage().contains("4 attempt(s)"), e.getMessage());
    }

    @Test
    void listenerRunsWithCallersThreadContext() throws Exception {
        FakeInference.InProcess server = new FakeInference.InProcess(new FakeInference());
        toClose.add(server);
        ThreadContext tc = new ThreadContext(Settings.EMPTY);
        InferenceClient c = FakeInference.client(List.of(server.endpoint), FakeInference.IN_PROCESS_CHANNELS, tc).build();
        toClose.add(c);
        CompletableFuture<String> seen = new CompletableFuture<>();
        try (ThreadContext.StoredContext ignored = tc.stashContext()) {
            tc.putHeader("X-Opaque-Id", "req-42");
            c.encode(
                EncodeRequest.newBuilder().addTexts("x").build(),
                null,
                ActionListener.wrap(r -> seen.complete(tc.getHeader("X-Opaque-Id") + "@" + Thread.currentThread().getName()), seen::completeExceptionally)
            );
        }
        String result = seen.get(10, TimeUnit.SECONDS);
        assertTrue(result.startsWith("req-42@"), result);
        assertFalse(result.endsWith("@" + Thread.currentThread().getName()));
    }

    @Test
    void infoReportsUnreachableWithoutFailing() throws Exception {
        HealthStatusManager health = new HealthStatusManager();
        health.setStatus("", ServingStatus.SERVING);
        Endpoint live = startNettyServer(new FakeInference(), health);
        Endpoint dead = deadEndpoint();
        InferenceClient c = nettyClient(List.of(dead, live), TimeValue.timeValueSeconds(5));

        CompletableFuture<List<EndpointReport>> f = new CompletableFuture<>();
        c.probeAll(TimeValue.timeValueSeconds(2), ActionListener.wrap(f::complete, f::completeExceptionally));
        List<EndpointReport> reports = f.get(10, TimeUnit.SECONDS);

        assertEquals(2, reports.size());
        EndpointReport down = reports.get(0);
        assertEquals(dead.toString(), down.endpoint());
        assertEquals("unreachable", down.health());
        assertTrue(down.reason().contains("UNAVAILABLE"), down.reason());
        assertNull(down.info());

        EndpointReport up = reports.get(1);
        assertEquals("SERVING", up.health());
        assertNotNull(up.info());
        assertEquals("fake-dense", up.info().getModels(0).getRef().getId());

        XContentBuilder builder = XContentFactory.jsonBuilder();
        RestSesaInfoAction.render(builder, "node-1", c, reports);
        String json = BytesReference.bytes(builder).utf8ToString();
        assertTrue(json.contains("\"name\":\"opensearch-sesa\""), json);
        assertTrue(json.contains("\"version\":\"3.5.0\""), json);
        assertTrue(json.contains("\"health\":\"unreachable\""), json);
        assertTrue(json.contains("\"health\":\"SERVING\""), json);
        assertTrue(json.contains("\"dimension\":2"), json);
        assertTrue(json.contains("\"serving_endpoints\":1"), json);
    }

    @Test
    void infoWithoutHealthServiceStillAsksForInfo() throws Exception {
        InferenceClient c = nettyClient(List.of(startNettyServer(new FakeInference(), null)), TimeValue.timeValueSeconds(5));
        CompletableFuture<List<EndpointReport>> f = new CompletableFuture<>();
        c.probeAll(TimeValue.timeValueSeconds(2), ActionListener.wrap(f::complete, f::completeExceptionally));
        EndpointReport r = f.get(10, TimeUnit.SECONDS).get(0);
        assertEquals("UNKNOWN", r.health());
        assertNotNull(r.info());
    }

    @Test
    void closedClientFailsFast() throws Exception {
        InferenceClient c = nettyClient(List.of(deadEndpoint()), TimeValue.timeValueSeconds(5));
        c.close();
        CompletableFuture<EncodeResponse> f = new CompletableFuture<>();
        c.encode(EncodeRequest.newBuilder().addTexts("x").build(), null, ActionListener.wrap(f::complete, f::completeExceptionally));
        assertTrue(assertThrowsCause(f).getMessage().contains("closed"));
    }

    @Test
    void closeFailsAScheduledRetryPromptly() throws Exception {
        FakeInference service = new FakeInference();
        FakeInference.InProcess server = new FakeInference.InProcess(service);
        toClose.add(server);
        service.encoding.failNext(io.grpc.Status.UNAVAILABLE.withDescription("warming up"), 20);
        InferenceClient c = FakeInference.client(List.of(server.endpoint), FakeInference.IN_PROCESS_CHANNELS)
            .maxRetries(() -> 20)
            .defaultTimeout(() -> TimeValue.timeValueSeconds(60))
            .build();
        toClose.add(c);
        CompletableFuture<EncodeResponse> f = new CompletableFuture<>();
        c.encode(EncodeRequest.newBuilder().addTexts("x").build(), null, ActionListener.wrap(f::complete, f::completeExceptionally));
        // After the 6th failed attempt the next retry waits 800-1600ms: close while it is scheduled.
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (service.encoding.calls.get() < 6 && System.nanoTime() < until) {
            Thread.sleep(5);
        }
        assertEquals(6, service.encoding.calls.get());
        Thread.sleep(100);
        assertFalse(f.isDone(), "a retry is pending");
        c.close();
        Exception e;
        try {
            f.get(1, TimeUnit.SECONDS);
            throw new AssertionError("expected a failure");
        } catch (java.util.concurrent.ExecutionException ee) {
            e = (Exception) ee.getCause();
        } catch (java.util.concurrent.TimeoutException te) {
            throw new AssertionError("the listener of a scheduled retry was not completed on close", te);
        }
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertEquals(org.opensearch.core.rest.RestStatus.SERVICE_UNAVAILABLE, ((org.opensearch.OpenSearchStatusException) e).status());
        assertEquals(6, service.encoding.calls.get(), "no attempt after close");
    }

    @Test
    void closeAwaitsAllChannelsWithOneDeadline() throws Exception {
        FakeInference.InProcess server = new FakeInference.InProcess(new FakeInference());
        toClose.add(server);
        List<ManagedChannel> created = new java.util.concurrent.CopyOnWriteArrayList<>();
        ChannelFactory slowToTerminate = (endpoint, executor) -> {
            ManagedChannel ch = new SlowToTerminateChannel(FakeInference.IN_PROCESS_CHANNELS.create(server.endpoint, executor));
            created.add(ch);
            return ch;
        };
        List<Endpoint> endpoints = List.of(new Endpoint("a", 1), new Endpoint("b", 2), new Endpoint("c", 3));
        InferenceClient c = FakeInference.client(endpoints, slowToTerminate).build();
        toClose.add(c);
        CompletableFuture<List<EndpointReport>> probed = new CompletableFuture<>();
        c.probeAll(TimeValue.timeValueSeconds(5), ActionListener.wrap(probed::complete, probed::completeExceptionally));
        assertEquals(3, probed.get(10, TimeUnit.SECONDS).size());
        assertEquals(3, created.size(), "one channel per endpoint");
        long start = System.nanoTime();
        c.close();
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(millis < 3_500, "close took " + millis + "ms: channels must be awaited with one shared deadline, not 2s each");
        for (ManagedChannel ch : created) {
            assertTrue(ch.isShutdown(), "every channel is shut down");
        }
    }

    /** Delegates to a real channel, but its awaitTermination always runs out the full timeout. */
    private static final class SlowToTerminateChannel extends ManagedChannel {
        private final ManagedChannel delegate;

        SlowToTerminateChannel(ManagedChannel delegate) {
            this.delegate = delegate;
        }

        @Override
        public ManagedChannel shutdown() {
            delegate.shutdown();
            return this;
        }

        @Override
        public boolean isShutdown() {
            return delegate.isShutdown();
        }

        @Override
        public boolean isTerminated() {
            return false;
        }

        @Override
        public ManagedChannel shutdownNow() {
            delegate.shutdownNow();
            return this;
        }

        @Override
        public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
            unit.sleep(timeout);
            return false;
        }

        @Override
        public io.grpc.ConnectivityState getState(boolean requestConnection) {
            return delegate.getState(requestConnection);
        }

        @Override
        public void resetConnectBackoff() {
            delegate.resetConnectBackoff();
        }

        @Override
        public <Q, R> io.grpc.ClientCall<Q, R> newCall(io.grpc.MethodDescriptor<Q, R> method, io.grpc.CallOptions options) {
            return delegate.newCall(method, options);
        }

        @Override
        public String authority() {
            return delegate.authority();
        }
    }

    @Test
    void backoffIsJitteredAndCapped() {
        for (int attempt = 0; attempt < 20; attempt++) {
            long exp = Math.min(InferenceClient.BACKOFF_CAP_MILLIS, InferenceClient.BACKOFF_BASE_MILLIS << attempt);
            long b = InferenceClient.backoffMillis(attempt);
            assertTrue(b >= exp / 2 && b <= exp, attempt + " -> " + b);
        }
    }

    private static Exception assertThrowsCause(CompletableFuture<?> f) throws InterruptedException {
        try {
            f.get(10, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            return (Exception) e.getCause();
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("no answer within 10s", e);
        }
        throw new AssertionError("expected a failure");
    }
}
