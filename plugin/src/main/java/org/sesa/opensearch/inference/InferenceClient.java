package org.sesa.opensearch.inference;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.ConnectivityState;
import io.grpc.Deadline;
import io.grpc.ForwardingClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.StreamObserver;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.opensearch.OpenSearchStatusException;
import org.opensearch.action.support.ContextPreservingActionListener;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.common.util.concurrent.AbstractRunnable;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.threadpool.ThreadPool;
import org.sesa.inference.v1.EncodeRequest;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.inference.v1.InferenceGrpc;
import org.sesa.inference.v1.InfoRequest;
import org.sesa.inference.v1.InfoResponse;
import org.sesa.inference.v1.RerankRequest;
import org.sesa.inference.v1.RerankResponse;

import java.io.Closeable;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.IntSupplier;
import java.util.function.Supplier;

/**
 * The one gateway from OpenSearch to the SESA inference server(s). Processors, queries and REST actions
 * never touch gRPC directly, so deadlines, retries, endpoint rotation, auth and thread hand-off live here.
 *
 * <ul>
 *   <li>Channels are created lazily (first call), one per endpoint, shared by all callers, closed in {@link #close()}.</li>
 *   <li>Only async stubs with a deadline: a caller thread (transport, http, search, write) never waits.</li>
 *   <li>Callbacks run on the node's {@code sesa_inference} thread pool ({@link Builder#threadPool}), never on a Netty
 *       event loop, and see the caller's {@link ThreadContext} restored. Delayed retries are scheduled by the node's
 *       scheduler and run on that pool too. A client built without a thread pool (tests, tools) runs both on a few
 *       threads of its own, which {@link #close()} stops.</li>
 *   <li>Calls go round-robin across endpoints; an endpoint that just failed with UNAVAILABLE is skipped
 *       for a growing cool-down while another one is available.</li>
 *   <li>UNAVAILABLE and RESOURCE_EXHAUSTED are retried (on the next endpoint) with jittered exponential
 *       backoff, at most {@code max_retries} times and never past the call's deadline.</li>
 * </ul>
 */
public final class InferenceClient implements Closeable {

    private static final Logger logger = LogManager.getLogger(InferenceClient.class);

    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    static final long BACKOFF_BASE_MILLIS = 50;
    static final long BACKOFF_CAP_MILLIS = 2_000;
    /** Do not start an attempt with less time than this left; it could only time out. */
    static final long MIN_ATTEMPT_MILLIS = 5;

    private final List<EndpointState> endpoints;
    private final ChannelFactory channelFactory;
    private final ThreadContext threadContext;
    private final Supplier<TimeValue> defaultTimeout;
    private final Supplier<TimeValue> ingestTimeout;
    private final IntSupplier maxRetries;
    private final List<ClientInterceptor> interceptors;
    private final Threads threads;
    private final AtomicInteger nextEndpoint = new AtomicInteger();
    /** Calls waiting for a scheduled retry; whoever removes one (the retry or {@link #close()}) completes it. */
    private final Set<RetryingCall<?>> pendingRetries = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    private InferenceClient(Builder b) {
        if (b.endpoints == null || b.endpoints.isEmpty()) {
            throw new IllegalArgumentException("at least one inference endpoint is required");
        }
        List<EndpointState> states = new ArrayList<>();
        for (Endpoint e : b.endpoints) {
            states.add(new EndpointState(e));
        }
        this.endpoints = List.copyOf(states);
        this.channelFactory = Objects.requireNonNull(b.channelFactory, "channelFactory");
        this.threadContext = Objects.requireNonNull(b.threadContext, "threadContext");
        this.defaultTimeout = Objects.requireNonNull(b.defaultTimeout, "defaultTimeout");
        this.ingestTimeout = Objects.requireNonNull(b.ingestTimeout, "ingestTimeout");
        this.maxRetries = Objects.requireNonNull(b.maxRetries, "maxRetries");
        List<ClientInterceptor> list = new ArrayList<>();
        if (b.authToken != null) {
            list.add(new BearerTokenInterceptor(b.authToken));
        }
        this.interceptors = List.copyOf(list);
        this.threads = b.threadPool != null
            ? new PoolThreads(b.threadPool, b.executorName)
            : new OwnThreads(b.threadFactory != null ? b.threadFactory : Executors.defaultThreadFactory(), b.callbackThreads);
    }

    /** Where the client's work runs: the callbacks of its calls, gRPC's offload work, and the delayed retries. */
    private interface Threads {
        /** Runs callbacks; must not reject while the client is open (a rejected callback would lose a response). */
        Executor executor();

        /** Runs {@code task} after {@code delayMillis}; throws {@link RejectedExecutionException} when it cannot. */
        void schedule(Runnable task, long delayMillis);

        /** No more scheduling (called first in {@link #close()}). */
        void stopScheduling();

        /** Releases what the client owns (called last in {@link #close()}, after the channels are closed). */
        void close();
    }

    /**
     * The node's thread pool: callbacks on its executor {@code name}, retries through its scheduler onto that executor.
     * The node owns them: {@link #close()} leaves them running (the node shuts its thread pool down after closing the
     * plugins, so the failures of in-flight calls still reach their listeners).
     */
    private static final class PoolThreads implements Threads {
        private final ThreadPool threadPool;
        private final String name;
        private final ExecutorService executor;

        PoolThreads(ThreadPool threadPool, String name) {
            this.threadPool = threadPool;
            this.name = name;
            this.executor = threadPool.executor(name); // an unknown name fails here, at node start
        }

        @Override
        public Executor executor() {
            return executor;
        }

        @Override
        public void schedule(Runnable task, long delayMillis) {
            threadPool.schedule(task, TimeValue.timeValueMillis(delayMillis), name);
        }

        @Override
        public void stopScheduling() {}

        @Override
        public void close() {}
    }

    /** Threads of the client's own, for a client without a node (tests, tools): stopped by {@link #close()}. */
    private static final class OwnThreads implements Threads {
        private final ExecutorService executor;
        private final ScheduledThreadPoolExecutor scheduler;

        OwnThreads(ThreadFactory tf, int callbackThreads) {
            // Fixed size, unbounded queue: a callback is never rejected (that would lose a response).
            this.executor = new ThreadPoolExecutor(callbackThreads, callbackThreads, 0L, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(), tf);
            this.scheduler = new ScheduledThreadPoolExecutor(1, tf);
            scheduler.setRemoveOnCancelPolicy(true);
        }

        @Override
        public Executor executor() {
            return executor;
        }

        @Override
        public void schedule(Runnable task, long delayMillis) {
            scheduler.schedule(task, delayMillis, TimeUnit.MILLISECONDS);
        }

        @Override
        public void stopScheduling() {
            scheduler.shutdownNow();
        }

        @Override
        public void close() {
            executor.shutdown();
            try {
                if (executor.awaitTermination(2, TimeUnit.SECONDS) == false) {
                    executor.shutdownNow();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                executor.shutdownNow();
            }
        }
    }

    /**
     * @param endpoints      servers in round-robin order (at least one)
     * @param channelFactory makes one channel per endpoint
     * @param threadContext  the node's thread context, restored for every callback
     */
    public static Builder builder(List<Endpoint> endpoints, ChannelFactory channelFactory, ThreadContext threadContext) {
        return new Builder(endpoints, channelFactory, threadContext);
    }

    /** Dense + concept encoding; the request's texts come back in order. {@code timeout == null} uses the node setting. */
    public void encode(EncodeRequest request, TimeValue timeout, ActionListener<EncodeResponse> listener) {
        call("Encode", timeout, listener, (stub, observer) -> stub.encode(request, observer));
    }

    /** Cross-encoder scores, one per passage in order. */
    public void rerank(RerankRequest request, TimeValue timeout, ActionListener<RerankResponse> listener) {
        call("Rerank", timeout, listener, (stub, observer) -> stub.rerank(request, observer));
    }

    /** Server Info from whichever endpoint round-robin picks. */
    public void info(TimeValue timeout, ActionListener<InfoResponse> listener) {
        call("Info", timeout, listener, (stub, observer) -> stub.info(InfoRequest.getDefaultInstance(), observer));
    }

    /** The node-level default deadline ({@code sesa.inference.timeout}). */
    public TimeValue defaultTimeout() {
        return defaultTimeout.get();
    }

    /** The deadline of an ingest processor's Encode without a timeout of its own ({@code sesa.inference.ingest_timeout}). */
    public TimeValue ingestTimeout() {
        return ingestTimeout.get();
    }

    public List<Endpoint> endpoints() {
        return endpoints.stream().map(s -> s.endpoint).toList();
    }

    /**
     * Health check, then Info, of every endpoint, each within {@code timeout}. Never fails: an endpoint
     * that cannot be reached is reported as such. Reports come back in endpoint order.
     */
    public void probeAll(TimeValue timeout, ActionListener<List<EndpointReport>> listener) {
        ActionListener<List<EndpointReport>> l = preserveContext(listener);
        int n = endpoints.size();
        AtomicReferenceArray<EndpointReport> results = new AtomicReferenceArray<>(n);
        AtomicInteger pending = new AtomicInteger(n);
        for (int i = 0; i < n; i++) {
            final int index = i;
            probe(endpoints.get(i), timeout, report -> {
                results.set(index, report);
                if (pending.decrementAndGet() == 0) {
                    List<EndpointReport> out = new ArrayList<>(n);
                    for (int j = 0; j < n; j++) {
                        out.add(results.get(j));
                    }
                    l.onResponse(out);
                }
            });
        }
    }

    private void probe(EndpointState ep, TimeValue timeout, java.util.function.Consumer<EndpointReport> done) {
        EndpointReport.Probe report = new EndpointReport.Probe(ep.endpoint.toString(), ep.consecutiveFailures);
        Channel channel;
        try {
            channel = channel(ep);
        } catch (RuntimeException e) {
            done.accept(report.unreachable("cannot create channel: " + e.getMessage()));
            return;
        }
        ep.reconnectIfFailed();
        Deadline deadline = Deadline.after(timeout.nanos(), TimeUnit.NANOSECONDS);
        HealthGrpc.newStub(channel).withDeadline(deadline).check(HealthCheckRequest.newBuilder().setService("").build(), new UnaryObserver<>() {
            @Override
            public void onError(Throwable t) {
                Status status = Status.fromThrowable(t);
                if (status.getCode() == Status.Code.UNIMPLEMENTED) {
                    // Reachable, just without grpc.health.v1: still ask for Info.
                    report.health("UNKNOWN", "server does not implement grpc.health.v1");
                    fetchInfo();
                } else {
                    done.accept(report.unreachable(describe(status)));
                }
            }

            @Override
            void completed(HealthCheckResponse response) {
                report.health(response == null ? "UNKNOWN" : response.getStatus().name(), null);
                fetchInfo();
            }

            private void fetchInfo() {
                InferenceGrpc.newStub(channel).withDeadline(deadline).info(InfoRequest.getDefaultInstance(), new UnaryObserver<>() {
                    @Override
                    public void onError(Throwable t) {
                        done.accept(report.infoFailed(describe(Status.fromThrowable(t))));
                    }

                    @Override
                    void completed(InfoResponse info) {
                        done.accept(report.answered(info));
                    }
                });
            }
        });
    }

    /** Starts one call with retries; {@code invoker} issues the RPC on a stub that already has the deadline. */
    private <R> void call(String method, TimeValue timeout, ActionListener<R> listener, Invoker<R> invoker) {
        ActionListener<R> l = preserveContext(listener);
        if (closed) {
            l.onFailure(new OpenSearchStatusException("sesa inference client is closed (node shutting down)", RestStatus.SERVICE_UNAVAILABLE));
            return;
        }
        TimeValue t = timeout != null ? timeout : defaultTimeout.get();
        new RetryingCall<>(method, t, Math.max(0, maxRetries.getAsInt()), invoker, l).attempt();
    }

    private <R> ActionListener<R> preserveContext(ActionListener<R> listener) {
        return new ContextPreservingActionListener<>(threadContext.newRestorableContext(false), listener);
    }

    private Channel channel(EndpointState ep) {
        ManagedChannel ch = ep.channel(channelFactory, threads.executor(), () -> closed);
        return interceptors.isEmpty() ? ch : ClientInterceptors.intercept(ch, interceptors);
    }

    /** The observer of a unary call: keeps its one message and hands it over when the call completes (null: none came). */
    private abstract static class UnaryObserver<T> implements StreamObserver<T> {
        private T message;

        @Override
        public final void onNext(T value) {
            message = value;
        }

        @Override
        public final void onCompleted() {
            completed(message);
        }

        /** The call completed with {@code message} (null when the server sent none). */
        abstract void completed(T message);
    }

    @FunctionalInterface
    private interface Invoker<R> {
        void invoke(InferenceGrpc.InferenceStub stub, StreamObserver<R> observer);
    }

    /** One logical call: attempts on successive endpoints until success, a non-retryable error, or the deadline. */
    private final class RetryingCall<R> {
        private final Invoker<R> invoker;
        private final ActionListener<R> listener;
        private final String method;
        private final TimeValue timeout;
        private final Deadline deadline;
        private final int maxRetries;
        private int attempt; // 0-based
        private EndpointState lastFailed;

        RetryingCall(String method, TimeValue timeout, int maxRetries, Invoker<R> invoker, ActionListener<R> listener) {
            this.method = method;
            this.timeout = timeout;
            this.deadline = Deadline.after(timeout.nanos(), TimeUnit.NANOSECONDS);
            this.maxRetries = maxRetries;
            this.invoker = invoker;
            this.listener = listener;
        }

        void attempt() {
            EndpointState ep = pick(lastFailed);
            Channel channel;
            try {
                channel = channel(ep);
            } catch (RuntimeException e) {
                fail(ep, Status.UNAVAILABLE.withDescription("cannot create channel: " + e.getMessage()).withCause(e), null);
                return;
            }
            ep.attempts.incrementAndGet();
            ep.reconnectIfFailed();
            InferenceGrpc.InferenceStub stub = InferenceGrpc.newStub(channel).withDeadline(deadline);
            invoker.invoke(stub, new UnaryObserver<>() {
                @Override
                public void onError(Throwable t) {
                    onAttemptFailed(ep, Status.fromThrowable(t));
                }

                @Override
                void completed(R value) {
                    ep.markSuccess();
                    if (value == null) {
                        listener.onFailure(
                            new OpenSearchStatusException("sesa inference " + method + " to " + ep.endpoint + " returned no message", RestStatus.BAD_GATEWAY)
                        );
                        return;
                    }
                    try {
                        listener.onResponse(value);
                    } catch (Exception e) {
                        // The listener's own failure must not be mistaken for a failed call.
                        logger.warn("listener of sesa inference " + method + " failed", e);
                    }
                }
            });
        }

        private void onAttemptFailed(EndpointState ep, Status status) {
            Status.Code code = status.getCode();
            boolean retryable = code == Status.Code.UNAVAILABLE || code == Status.Code.RESOURCE_EXHAUSTED;
            if (code == Status.Code.UNAVAILABLE) {
                ep.markFailure();
            }
            String stop = null;
            if (retryable) {
                if (attempt >= maxRetries) {
                    stop = maxRetries == 0 ? null : "retries exhausted";
                } else if (closed) {
                    stop = "client closed";
                } else {
                    long backoff = backoffMillis(attempt);
                    long remaining = deadline.timeRemaining(TimeUnit.MILLISECONDS);
                    if (remaining > backoff + MIN_ATTEMPT_MILLIS) {
                        attempt++;
                        lastFailed = ep;
                        logger.debug("sesa inference {} to {} failed with {}, retry {} in {}ms", method, ep.endpoint, code, attempt, backoff);
                        // Registered before `closed` is read again: either close() sees this call or we see `closed`.
                        pendingRetries.add(this);
                        if (closed == false) {
                            try {
                                threads.schedule(new Retry(this), backoff);
                                return;
                            } catch (RejectedExecutionException e) {
                                // closing: fall through
                            }
                        }
                        if (pendingRetries.remove(this) == false) {
                            return; // close() has completed it
                        }
                        attempt--;
                        stop = "client closed";
                    } else {
                        stop = "no time left within the " + timeout + " deadline for another retry";
                    }
                }
            }
            fail(ep, status, stop);
        }

        /** The scheduled retry; runs only if {@link #close()} has not completed this call meanwhile. */
        private void retry() {
            if (pendingRetries.remove(this)) {
                attempt();
            }
        }

        /** Completes a call whose retry was pending when the client closed. */
        private void failClosed() {
            try {
                listener.onFailure(
                    new OpenSearchStatusException(
                        String.format(
                            Locale.ROOT,
                            "sesa inference %s failed after %d attempt(s): inference client closed (node shutting down) before retry %d could run",
                            method,
                            attempt,
                            attempt
                        ),
                        RestStatus.SERVICE_UNAVAILABLE
                    )
                );
            } catch (Exception e) {
                logger.warn("listener of sesa inference " + method + " failed", e);
            }
        }

        private void fail(EndpointState ep, Status status, String stop) {
            String msg = String.format(
                Locale.ROOT,
                "sesa inference %s to %s failed after %d attempt(s)%s: %s",
                method,
                ep.endpoint,
                attempt + 1,
                stop == null ? "" : " (" + stop + ")",
                status.getCode() == Status.Code.DEADLINE_EXCEEDED ? "deadline of " + timeout + " exceeded (" + describe(status) + ")" : describe(status)
            );
            listener.onFailure(new OpenSearchStatusException(msg, restStatus(status.getCode()), status.asRuntimeException()));
        }
    }

    /**
     * A scheduled retry. Should the executor it is to run on refuse it (only while the node shuts down), its call
     * fails with 503 as on {@link #close()}, unless close has completed it already.
     */
    private final class Retry extends AbstractRunnable {
        private final RetryingCall<?> call;

        Retry(RetryingCall<?> call) {
            this.call = call;
        }

        @Override
        protected void doRun() {
            call.retry();
        }

        @Override
        public void onRejection(Exception e) {
            if (pendingRetries.remove(call)) {
                call.failClosed();
            }
        }

        @Override
        public void onFailure(Exception e) {
            logger.warn("retry of a sesa inference call failed", e);
        }
    }

    /** Exponential backoff with "equal jitter": half fixed, half random, so retries from many docs spread out. */
    static long backoffMillis(int attempt) {
        long exp = Math.min(BACKOFF_CAP_MILLIS, BACKOFF_BASE_MILLIS << Math.min(attempt, 16));
        return exp / 2 + ThreadLocalRandom.current().nextLong(exp / 2 + 1);
    }

    /** Round-robin over healthy endpoints, avoiding the one that just failed; if none is healthy, the one that recovers first. */
    private EndpointState pick(EndpointState avoid) {
        int n = endpoints.size();
        int start = Math.floorMod(nextEndpoint.getAndIncrement(), n);
        long now = System.nanoTime();
        EndpointState fallback = null;
        for (int i = 0; i < n; i++) {
            EndpointState ep = endpoints.get((start + i) % n);
            if (ep == avoid && n > 1) {
                continue;
            }
            if (ep.isHealthy(now)) {
                return ep;
            }
            if (fallback == null || ep.downUntilNanos < fallback.downUntilNanos) {
                fallback = ep;
            }
        }
        return fallback != null ? fallback : avoid;
    }

    static String describe(Status status) {
        StringBuilder sb = new StringBuilder(status.getCode().name());
        String description = status.getDescription();
        if (description != null) {
            // Netty appends a multi-line channel pipeline dump; the first line is the message.
            int nl = description.indexOf('\n');
            sb.append(": ").append(nl >= 0 ? description.substring(0, nl) : description);
        }
        Throwable cause = status.getCause();
        // Walk to the root cause: "io exception" alone does not tell an operator that the port is closed.
        while (cause != null && cause.getCause() != null && cause.getCause() != cause) {
            cause = cause.getCause();
        }
        if (cause != null && cause.getMessage() != null && (description == null || description.contains(cause.getMessage()) == false)) {
            sb.append(" (").append(cause.getClass().getSimpleName()).append(": ").append(cause.getMessage()).append(')');
        }
        return sb.toString();
    }

    static RestStatus restStatus(Status.Code code) {
        return switch (code) {
            case UNAVAILABLE -> RestStatus.SERVICE_UNAVAILABLE;
            case RESOURCE_EXHAUSTED -> RestStatus.TOO_MANY_REQUESTS;
            case DEADLINE_EXCEEDED -> RestStatus.GATEWAY_TIMEOUT;
            case INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE -> RestStatus.BAD_REQUEST;
            case UNAUTHENTICATED -> RestStatus.UNAUTHORIZED;
            case PERMISSION_DENIED -> RestStatus.FORBIDDEN;
            case NOT_FOUND -> RestStatus.NOT_FOUND;
            case UNIMPLEMENTED -> RestStatus.NOT_IMPLEMENTED;
            default -> RestStatus.BAD_GATEWAY;
        };
    }

    /** Counters for one endpoint, e.g. to assert round-robin in tests or to show in the info action. */
    public record EndpointStats(Endpoint endpoint, long attempts, int consecutiveFailures) {}

    public List<EndpointStats> stats() {
        return endpoints.stream().map(s -> new EndpointStats(s.endpoint, s.attempts.get(), s.consecutiveFailures)).toList();
    }

    /** Shuts channels down without waiting for in-flight calls longer than a moment; they fail with UNAVAILABLE. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // Retries that are scheduled would never run once the scheduler stops: fail them now, each exactly once.
        for (RetryingCall<?> call : pendingRetries) {
            if (pendingRetries.remove(call)) {
                call.failClosed();
            }
        }
        threads.stopScheduling();
        for (EndpointState ep : endpoints) {
            ep.shutdown();
        }
        // One deadline for all channels, not 2s each in turn.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
        for (EndpointState ep : endpoints) {
            ep.awaitTermination(Math.max(0, deadline - System.nanoTime()));
        }
        channelFactory.close();
        threads.close();
    }

    /** Per-endpoint channel and health memory. */
    private static final class EndpointState {
        final Endpoint endpoint;
        final AtomicInteger attempts = new AtomicInteger();
        volatile int consecutiveFailures;
        volatile long downUntilNanos;
        private ManagedChannel channel;

        EndpointState(Endpoint endpoint) {
            this.endpoint = endpoint;
        }

        synchronized ManagedChannel channel(ChannelFactory factory, java.util.concurrent.Executor executor, java.util.function.BooleanSupplier isClosed) {
            if (isClosed.getAsBoolean()) {
                throw new IllegalStateException("client is closed");
            }
            if (channel == null) {
                channel = factory.create(endpoint, executor);
            }
            return channel;
        }

        boolean isHealthy(long nowNanos) {
            if (consecutiveFailures > 0 && nowNanos - downUntilNanos < 0) {
                return false;
            }
            ManagedChannel ch;
            synchronized (this) {
                ch = channel;
            }
            return ch == null || ch.getState(false) != ConnectivityState.TRANSIENT_FAILURE;
        }

        /**
         * gRPC waits out its own reconnect backoff (up to minutes) before dialling a failed endpoint again,
         * failing calls fast meanwhile. We decide when to try an endpoint (our cool-down), so when we do,
         * dial now: a server that came back is used at once.
         */
        void reconnectIfFailed() {
            ManagedChannel ch;
            synchronized (this) {
                ch = channel;
            }
            if (ch != null && ch.getState(false) == ConnectivityState.TRANSIENT_FAILURE) {
                ch.resetConnectBackoff();
            }
        }

        void markSuccess() {
            consecutiveFailures = 0;
            downUntilNanos = 0;
        }

        void markFailure() {
            int failures = Math.min(consecutiveFailures + 1, 1_000);
            consecutiveFailures = failures;
            long coolDownMillis = Math.min(30_000L, 1_000L << Math.min(failures - 1, 5));
            downUntilNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(coolDownMillis);
        }

        synchronized void shutdown() {
            if (channel != null) {
                channel.shutdownNow();
            }
        }

        void awaitTermination(long timeoutNanos) {
            ManagedChannel ch;
            synchronized (this) {
                ch = channel;
            }
            if (ch != null) {
                try {
                    ch.awaitTermination(timeoutNanos, TimeUnit.NANOSECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    /** Adds {@code authorization: Bearer <token>} to every call. */
    private static final class BearerTokenInterceptor implements ClientInterceptor {
        private final String value;

        BearerTokenInterceptor(String token) {
            this.value = "Bearer " + token;
        }

        @Override
        public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
            return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
                @Override
                public void start(Listener<RespT> responseListener, Metadata headers) {
                    headers.put(AUTHORIZATION, value);
                    super.start(responseListener, headers);
                }
            };
        }
    }

    /**
     * Construction parameters beyond the required ones of {@link #builder}, each with a default; the plugin fills
     * them from node settings, tests from fakes.
     */
    public static final class Builder {
        private final List<Endpoint> endpoints;
        private final ChannelFactory channelFactory;
        private final ThreadContext threadContext;
        private Supplier<TimeValue> defaultTimeout = () -> TimeValue.timeValueSeconds(10);
        private Supplier<TimeValue> ingestTimeout = () -> TimeValue.timeValueSeconds(60);
        private IntSupplier maxRetries = () -> 3;
        private String authToken;
        private ThreadFactory threadFactory;
        private int callbackThreads = 2;
        private ThreadPool threadPool;
        private String executorName;

        private Builder(List<Endpoint> endpoints, ChannelFactory channelFactory, ThreadContext threadContext) {
            this.endpoints = endpoints;
            this.channelFactory = channelFactory;
            this.threadContext = threadContext;
        }

        /** Read at every call without its own timeout (a dynamic node setting). */
        public Builder defaultTimeout(Supplier<TimeValue> defaultTimeout) {
            this.defaultTimeout = Objects.requireNonNull(defaultTimeout, "defaultTimeout");
            return this;
        }

        /** Read at every ingest Encode without its own timeout (a dynamic node setting). */
        public Builder ingestTimeout(Supplier<TimeValue> ingestTimeout) {
            this.ingestTimeout = Objects.requireNonNull(ingestTimeout, "ingestTimeout");
            return this;
        }

        /** Read at every call (a dynamic node setting). */
        public Builder maxRetries(IntSupplier maxRetries) {
            this.maxRetries = Objects.requireNonNull(maxRetries, "maxRetries");
            return this;
        }

        public Builder authToken(String authToken) {
            this.authToken = authToken;
            return this;
        }

        /**
         * Runs the callbacks (and gRPC's offload work) on {@code threadPool.executor(executor)} and schedules retries
         * with {@code threadPool.schedule(..., executor)}, so the client's work shows in the node's thread pool stats;
         * {@link #threadFactory} and {@link #callbackThreads} are then unused. The executor must never reject while the
         * node runs (a scaling one: see {@code SesaSettings.THREAD_POOL}).
         */
        public Builder threadPool(ThreadPool threadPool, String executor) {
            this.threadPool = Objects.requireNonNull(threadPool, "threadPool");
            this.executorName = Objects.requireNonNull(executor, "executor");
            return this;
        }

        /** Threads of the client's own, without {@link #threadPool}. */
        public Builder threadFactory(ThreadFactory threadFactory) {
            this.threadFactory = threadFactory;
            return this;
        }

        /** How many callback threads of its own the client has, without {@link #threadPool}. */
        public Builder callbackThreads(int callbackThreads) {
            if (callbackThreads < 1) {
                throw new IllegalArgumentException("callbackThreads must be >= 1");
            }
            this.callbackThreads = callbackThreads;
            return this;
        }

        public InferenceClient build() {
            return new InferenceClient(this);
        }
    }
}
