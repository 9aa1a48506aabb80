package org.sesa.opensearch.search;

import org.junit.jupiter.api.extension.RegisterExtension;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.action.ActionListener;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.index.query.WrapperQueryBuilder;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.opensearch.FakeInference;
import org.sesa.opensearch.FakeInferenceFixture;
import org.sesa.opensearch.search.SearchTestSupport.RecordingSearcher;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.processor.SesaQueryProcessor;
import org.sesa.opensearch.search.processor.SesaQueryProcessorFactory;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Base of the tests that run {@code sesa_query}: a fake inference server with a client on it, a recording branch
 * searcher, processors built by the real factory, and helpers that run a request and wait for its side branches.
 */
public abstract class SesaQueryTestCase {

    @RegisterExtension
    protected final FakeInferenceFixture fake = new FakeInferenceFixture(b -> b.maxRetries(() -> 0));
    protected final FakeInference service = fake.service;
    protected final RecordingSearcher searcher = new RecordingSearcher();

    /** A {@code sesa_query} processor made by its factory from {@code key, value, ...} options. */
    protected SesaQueryProcessor processor(Object... kv) {
        Map<String, Object> cfg = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            cfg.put((String) kv[i], kv[i + 1]);
        }
        return new SesaQueryProcessorFactory(fake::client, searcher, SearchTestSupport.registry()).create(Map.of(), "t", null, false, cfg, null);
    }

    protected static SearchRequest request(SearchSourceBuilder source) {
        return new SearchRequest(new String[] { "sesa-test" }, source);
    }

    protected static SearchSourceBuilder source(SesaSearchExt ext) {
        return new SearchSourceBuilder().ext(List.of(ext));
    }

    protected static SesaSearchExt ext(String json) {
        return SesaSearchExt.fromMap(XContentHelper.convertToMap(JsonXContent.jsonXContent, json, true));
    }

    /** The rewritten request and the pipeline context of one run. */
    public record Result(SearchRequest request, PipelineProcessingContext context) {
        public SesaSearchPlan plan() {
            return SesaSearchPlan.from(context);
        }
    }

    /** Runs the processor and waits for the side branches too (a deferred hybrid search starts them later). */
    protected static Result run(SesaQueryProcessor p, SearchRequest r) throws Exception {
        PipelineProcessingContext ctx = new PipelineProcessingContext();
        CompletableFuture<SearchRequest> f = new CompletableFuture<>();
        p.processRequestAsync(r, ctx, ActionListener.wrap(f::complete, f::completeExceptionally));
        Result result = new Result(f.get(10, TimeUnit.SECONDS), ctx);
        sides(result).exceptionally(e -> null).get(10, TimeUnit.SECONDS);
        return result;
    }

    protected static CompletableFuture<MultiSearchResponse> sides(Result r) {
        CompletableFuture<MultiSearchResponse> out = new CompletableFuture<>();
        if (r.plan() == null || r.plan().otherResults() == null) {
            out.complete(null);
        } else {
            r.plan().otherResults().whenDone(ActionListener.wrap(out::complete, out::completeExceptionally));
        }
        return out;
    }

    /** The failure of the processor itself, or of the side branches it started. */
    protected static Exception failure(SesaQueryProcessor p, SearchRequest r) throws Exception {
        Result result;
        try {
            result = run(p, r);
        } catch (ExecutionException e) {
            return (Exception) e.getCause();
        }
        ExecutionException e = assertThrows(ExecutionException.class, () -> sides(result).get(10, TimeUnit.SECONDS));
        return (Exception) e.getCause();
    }

    protected static Map<String, Object> map(String json) {
        return XContentHelper.convertToMap(JsonXContent.jsonXContent, json, false);
    }

    protected static String wrapped(QueryBuilder q) {
        return new String(assertInstanceOf(WrapperQueryBuilder.class, q).source(), StandardCharsets.UTF_8);
    }
}
