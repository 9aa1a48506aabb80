package org.sesa.opensearch;

import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.sesa.opensearch.inference.InferenceClient;

import java.io.IOException;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A {@link FakeInference} on an in-process server with a client on it, for each test of a class that registers this
 * with {@code @RegisterExtension} on an instance field: the server and the client start before the test's own
 * {@code @BeforeEach} methods and stop after its {@code @AfterEach} ones.
 */
public final class FakeInferenceFixture implements BeforeEachCallback, AfterEachCallback {

    /** The fake server's script and what it received. */
    public final FakeInference service = new FakeInference();
    private final UnaryOperator<InferenceClient.Builder> options;
    private FakeInference.InProcess server;
    private InferenceClient client;

    /** @param options what the tests change on the {@link FakeInference#client} defaults, e.g. the retries */
    public FakeInferenceFixture(UnaryOperator<InferenceClient.Builder> options) {
        this.options = options;
    }

    @Override
    public void beforeEach(ExtensionContext context) throws IOException {
        server = new FakeInference.InProcess(service);
        client = options.apply(FakeInference.client(List.of(server.endpoint), FakeInference.IN_PROCESS_CHANNELS)).build();
    }

    @Override
    public void afterEach(ExtensionContext context) throws InterruptedException {
        client.close();
        server.close();
    }

    /** The client on the fake server (during a test). */
    public InferenceClient client() {
        return client;
    }
}
