package org.sesa.opensearch;

import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;

import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.sesa.inference.v1.Concept;
import org.sesa.inference.v1.ConceptSpaceInfo;
import org.sesa.inference.v1.DomainCheck;
import org.sesa.inference.v1.Embedding;
import org.sesa.inference.v1.EncodeRequest;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.inference.v1.InferenceGrpc;
import org.sesa.inference.v1.InfoRequest;
import org.sesa.inference.v1.InfoResponse;
import org.sesa.inference.v1.ItemError;
import org.sesa.inference.v1.ModelInfo;
import org.sesa.inference.v1.ModelRef;
import org.sesa.inference.v1.PassageScore;
import org.sesa.inference.v1.RerankRequest;
import org.sesa.inference.v1.RerankResponse;
import org.sesa.inference.v1.Timing;
import org.sesa.opensearch.inference.ChannelFactory;
import org.sesa.opensearch.inference.Endpoint;
import org.sesa.opensearch.inference.InferenceClient;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A scriptable SESA inference server for tests. By default Encode answers every text with a dense vector
 * {@code [length, 1]}, one concept {@code k_<text>} and label {@code <text>}; texts equal to "bad" get an
 * ItemError. Rerank scores each passage with {@link #rerankScorer} (default: how often the query occurs in it).
 * How each RPC answers (queued failures first, one per call; hang; delay) is scripted apart: {@link #encoding}
 * and {@link #reranking}.
 */
public final class FakeInference extends InferenceGrpc.InferenceImplBase {

    public static final ModelRef DENSE = ModelRef.newBuilder().setId("fake-dense").setVersion("1").build();
    public static final ModelRef CONCEPTS = ModelRef.newBuilder().setId("fake-concepts").setVersion("2").build();

    public final List<String> authorizations = new CopyOnWriteArrayList<>();
    /** The models Encode reports (a test may "deploy" another one). */
    public volatile ModelRef denseModel = DENSE;
    public volatile ModelRef conceptModel = CONCEPTS;
    /** When set, Encode / Rerank report this timing (unset: a server older than the field, which sends none). */
    public volatile Timing encodeTiming;
    public volatile Timing rerankTiming;
    /** When set, builds the Embedding of each Encode text (instead of the default one). */
    public volatile java.util.function.Function<String, Embedding> embedder;
    /** The Encode calls received, and how Encode answers: queued failures, hang or delay. */
    public final Script<EncodeRequest> encoding = new Script<>();
    /** Score of (query, passage); NaN gives that passage an ItemError. */
    public volatile java.util.function.ToDoubleBiFunction<String, String> rerankScorer = FakeInference::occurrences;
    /** When set, Rerank reports this domain check; out of domain with skip_out_of_domain asked: no scores. */
    public volatile DomainCheck rerankDomain;
    /** The concept spaces Info lists (empty: a server that lists none). */
    public volatile List<ConceptSpaceInfo> conceptSpaces = List.of();
    /** The dimension Info reports for the encoder (Encode's default vectors have 2 values). */
    public volatile int encoderDimension = 2;
    /** Info calls received. */
    public final AtomicInteger infoCalls = new AtomicInteger();
    /** The Rerank calls received, and how Rerank answers, scripted apart from Encode's. */
    public final Script<RerankRequest> reranking = new Script<>();
    public static final ModelRef RERANKER = ModelRef.newBuilder().setId("fake-reranker").setVersion("3").build();
    private static final java.util.concurrent.ScheduledExecutorService DELAYER = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "fake-inference-delayer");
        t.setDaemon(true);
        return t;
    });

    /**
     * One RPC of the fake: the requests it received and how it answers them: first the queued failures, one per call;
     * else never (hang) or after a delay.
     */
    public static final class Script<Q> {
        public final List<Q> requests = new CopyOnWriteArrayList<>();
        public final AtomicInteger calls = new AtomicInteger();
        private final Deque<Status> failures = new ArrayDeque<>();
        private volatile boolean hang;
        private volatile long delayMillis;

        /** Never answer (to exercise deadlines). */
        public Script<Q> hang() {
            this.hang = true;
            return this;
        }

        /** Fail the next {@code times} calls with {@code status}. */
        public synchronized Script<Q> failNext(Status status, int times) {
            for (int i = 0; i < times; i++) {
                failures.add(status);
            }
            return this;
        }

        /** Answer every call after this delay (from another thread). */
        public Script<Q> delay(long millis) {
            this.delayMillis = millis;
            return this;
        }

        private synchronized Status nextFailure() {
            return failures.poll();
        }

        /** Records {@code request} and answers it as scripted; {@code response} runs only when the call is to succeed. */
        <T> void answer(Q request, StreamObserver<T> observer, java.util.function.Function<Q, T> response) {
            calls.incrementAndGet();
            requests.add(request);
            if (hang) {
                return;
            }
            Status failure = nextFailure();
            if (failure != null) {
                observer.onError(failure.asRuntimeException());
                return;
            }
            T value = response.apply(request);
            Runnable send = () -> {
                observer.onNext(value);
                observer.onCompleted();
            };
            if (delayMillis > 0) {
                DELAYER.schedule(send, delayMillis, TimeUnit.MILLISECONDS);
            } else {
                send.run();
            }
        }
    }

    public static double occurrences(String query, String passage) {
        int n = 0;
        for (int i = passage.indexOf(query); i >= 0 && query.isEmpty() == false; i = passage.indexOf(query, i + 1)) {
            n++;
        }
        return n;
    }

    @Override
    public void rerank(RerankRequest request, StreamObserver<RerankResponse> observer) {
        reranking.answer(request, observer, this::scores);
    }

    private RerankResponse scores(RerankRequest request) {
        RerankResponse.Builder b = RerankResponse.newBuilder().setModel(RERANKER);
        if (rerankTiming != null) {
            b.setTiming(rerankTiming);
        }
        DomainCheck domain = rerankDomain;
        if (domain != null) {
            b.setDomain(domain);
        }
        boolean skip = domain != null && domain.getInDomain() == false && request.getOptions().getSkipOutOfDomain();
        for (String passage : skip ? List.<String>of() : request.getPassagesList()) {
            double score = rerankScorer.applyAsDouble(request.getQuery(), passage);
            if (Double.isNaN(score)) {
                b.addScores(PassageScore.newBuilder().setError(ItemError.newBuilder().setCode("INVALID_ARGUMENT").setMessage("bad passage")));
            } else {
                b.addScores(PassageScore.newBuilder().setScore((float) score).setChunks(1));
            }
        }
        return b.build();
    }

    @Override
    public void encode(EncodeRequest request, StreamObserver<EncodeResponse> observer) {
        encoding.answer(request, observer, this::embeddings);
    }

    private EncodeResponse embeddings(EncodeRequest request) {
        EncodeResponse.Builder b = EncodeResponse.newBuilder().setDenseModel(denseModel).setConceptModel(conceptModel);
        if (encodeTiming != null) {
            b.setTiming(encodeTiming);
        }
        for (String text : request.getTextsList()) {
            if (embedder != null) {
                b.addEmbeddings(embedder.apply(text));
                continue;
            }
            if (text.equals("bad")) {
                b.addEmbeddings(
                    Embedding.newBuilder().setError(ItemError.newBuilder().setCode("INVALID_ARGUMENT").setMessage("text [bad] is not allowed"))
                );
                continue;
            }
            b.addEmbeddings(
                Embedding.newBuilder()
                    .addDense(text.length())
                    .addDense(1f)
                    .addConcepts(Concept.newBuilder().setKey("k_" + text.replace(' ', '_')).setLabel(text).setWeight(0.5f))
                    .addTopLabels(text)
                    .setTruncated(text.length() > 20)
                    .setNumTokens(text.length())
            );
        }
        return b.build();
    }

    @Override
    public void info(InfoRequest request, StreamObserver<InfoResponse> observer) {
        infoCalls.incrementAndGet();
        InfoResponse.Builder b = InfoResponse.newBuilder()
            .setServerVersion("fake-0")
            .setDevice("cpu")
            .addProviders("CPUExecutionProvider")
            .addModels(ModelInfo.newBuilder().setRole("encoder").setRef(DENSE).setDimension(encoderDimension).setPrecision("fp32"))
            .addAllConceptSpaces(conceptSpaces);
        if (conceptSpaces.isEmpty() == false) {
            b.setConceptSpace(conceptSpaces.get(0));
        }
        observer.onNext(b.build());
        observer.onCompleted();
    }

    /** Records the authorization header of every call. */
    public ServerInterceptor authRecorder() {
        Metadata.Key<String> key = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
        return new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
                String v = headers.get(key);
                authorizations.add(v == null ? "<none>" : v);
                return next.startCall(call, headers);
            }
        };
    }

    /** An in-process server, addressed through an {@link Endpoint} whose host is the server name. */
    public static final class InProcess implements AutoCloseable {
        public final FakeInference service;
        public final Endpoint endpoint;
        public final HealthStatusManager health = new HealthStatusManager();
        private final Server server;

        public InProcess(FakeInference service) throws IOException {
            this.service = service;
            String name = "sesa-test-" + UUID.randomUUID();
            this.endpoint = new Endpoint(name, 1);
            this.server = InProcessServerBuilder.forName(name)
                .directExecutor()
                .addService(ServerInterceptors.intercept(service, service.authRecorder()))
                .addService(health.getHealthService())
                .build()
                .start();
        }

        @Override
        public void close() throws InterruptedException {
            server.shutdownNow();
            server.awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /** Channels to in-process servers named by the endpoint host. */
    public static final ChannelFactory IN_PROCESS_CHANNELS = new ChannelFactory() {
        @Override
        public ManagedChannel create(Endpoint endpoint, java.util.concurrent.Executor executor) {
            return InProcessChannelBuilder.forName(endpoint.host()).executor(executor).build();
        }
    };

    public static InferenceClient.Builder client(List<Endpoint> endpoints, ChannelFactory channels) {
        return client(endpoints, channels, new ThreadContext(Settings.EMPTY));
    }

    /** A client builder for tests: a 5s deadline and 3 retries unless the test says otherwise. */
    public static InferenceClient.Builder client(List<Endpoint> endpoints, ChannelFactory channels, ThreadContext threadContext) {
        return InferenceClient.builder(endpoints, channels, threadContext).defaultTimeout(() -> TimeValue.timeValueSeconds(5)).maxRetries(() -> 3);
    }
}
